"""The pages in a real browser against the session's stack: Debian's chromium, driven by
playwright-core (frontend/e2e/run.mjs: every scenario in one browser, one LoRA trained for real),
then what the database says about it. Screenshots go to test-artifacts/e2e/.

`make test` builds the pages first and requires this test (LORAFLOW_E2E=required); run alone
without the build, node or chromium, it is skipped and says what is missing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool

from loraflow.auth import TokenVerifier
from loraflow.db import as_caller, as_service, library
from loraflow.devstack import embedded
from loraflow.settings import REPO_ROOT, Settings
from tests.conftest import JWT_SECRET, User
from tests.helpers.api_process import start_api
from tests.helpers.loras import character_png, mark_completed

FRONTEND = REPO_ROOT / "frontend"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
CHROMIUM = os.environ.get("LORAFLOW_CHROMIUM", "/usr/bin/chromium")
#: The browser run's own limit: one training on the tiny model, and the rest while it trains.
RUN_TIMEOUT_S = 420


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (Node.js >= 20.19)"
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        return "frontend/node_modules is missing: run `npm ci` in frontend/"
    if not (FRONTEND / "dist" / "index.html").is_file():
        return "the pages are not built: run `npm run build` in frontend/"
    if not Path(CHROMIUM).is_file():
        return f"no chromium at {CHROMIUM}: `apt-get install chromium` (Debian), or set LORAFLOW_CHROMIUM"
    return None


async def _lora(pool: AsyncConnectionPool, user: User, name: str, description: str | None = None) -> str:
    """A LoRA created as its user, the way the API does (no workflow behind it)."""
    caller = TokenVerifier(secret=JWT_SECRET, audience="authenticated").verify(user.token)
    async with as_caller(pool, caller) as conn:
        row = await library.create_lora(conn, caller, library.NewLora(name=name, description=description))
    return str(row["id"])


async def _count(pool: AsyncConnectionPool, user: User, name: str) -> int:
    async with as_service(pool) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n FROM lora_models WHERE user_id = %s AND name = %s", [user.id, name]
            )
        ).fetchone()
    return int(row["n"]) if row else 0


async def _status(pool: AsyncConnectionPool, user: User, name: str) -> list[tuple[str, bool]]:
    async with as_service(pool) as conn:
        rows = await (
            await conn.execute(
                "SELECT training_status, validation_passed FROM lora_models WHERE user_id = %s AND name = %s",
                [user.id, name],
            )
        ).fetchall()
    return [(r["training_status"], r["validation_passed"]) for r in rows]


async def test_the_pages_in_a_browser(
    api_url: str,
    worker: Settings,
    tiny_model: Path,
    pool: AsyncConnectionPool,
    pg_dsn: str,
    temporal_address: str,
    data_dir: Path,
    make_user: Callable[..., User],
    tmp_path: Path,
) -> None:
    missing = _missing()
    if missing:
        if os.environ.get("LORAFLOW_E2E") == "required":
            pytest.fail(missing)
        pytest.skip(missing)

    # An API of its own whose month's budget is spent (LORAFLOW_MONTHLY_BUDGET_USD=0): the 503,
    # without touching the spend the other tests see. Started while the data is seeded.
    budget_api = asyncio.create_task(
        asyncio.to_thread(
            start_api, pg_dsn, temporal_address, tmp_path / "budget-api.log",
            LORAFLOW_MONTHLY_BUDGET_USD="0", LORAFLOW_SCREENING="false", LORAFLOW_DATA_DIR=str(data_dir),
        )
    )  # fmt: skip
    tag = uuid.uuid4().hex[:6]
    user, other, admin = make_user(), make_user(), make_user(admin=True)
    existing_name, mine_name, training_name = f"E2E Hero {tag}", f"E2E Mine {tag}", f"E2E Training {tag}"
    existing = await _lora(pool, other, existing_name, "another user's character, seeded by the test")
    await mark_completed(pool, existing)
    await mark_completed(pool, await _lora(pool, user, mine_name))
    training = await _lora(pool, user, training_name, "still training")
    async with as_service(pool) as conn:
        await conn.execute("UPDATE lora_models SET training_status = 'training' WHERE id = %s", [training])
    images = []
    for i in range(4):
        path = tmp_path / f"character-{i}.png"
        path.write_bytes(character_png(i))
        images.append(str(path))
    train_name = f"E2E Browser {tag}"
    budget_proc, budget_url = await budget_api
    config = {
        "baseUrl": api_url,
        # Another origin, so the admin's token is kept apart from the user's.
        "adminUrl": api_url.replace("127.0.0.1", "localhost"),
        "budgetUrl": budget_url,
        "userToken": user.token,
        "adminToken": admin.token,
        "images": images,
        "existing": {
            "id": existing, "name": existing_name, "email": other.email,
            "label": f"{existing_name} (by {other.email})",
        },
        "training": {"id": training, "name": training_name, "label": f"{training_name} (by {user.email})"},
        "mine": {"name": mine_name},
        "others": {"name": existing_name},
        "trainName": train_name,
        "artifacts": str(ARTIFACTS),
        "chromium": CHROMIUM,
    }  # fmt: skip
    config_file = tmp_path / "e2e.json"
    config_file.write_text(json.dumps(config))
    try:
        # Awaited, never blocked on: the session's worker trains in this event loop.
        proc = await asyncio.create_subprocess_exec(
            "node", "e2e/run.mjs", str(config_file), cwd=FRONTEND,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
            pytest.fail(f"the browser run took over {RUN_TIMEOUT_S}s:\n{out.decode()[-6000:]}")
    finally:
        embedded.stop_process(budget_proc)
        async with as_service(pool) as conn:  # nothing stays "training" with no workflow behind it
            await conn.execute("UPDATE lora_models SET training_status = 'failed' WHERE id = %s", [training])
    report = out.decode()
    sys.stdout.write(report)
    lines = [json.loads(line) for line in report.splitlines() if line.startswith("{")]
    failed = [r for r in lines if r.get("ok") is False]
    assert proc.returncode == 0 and not failed, report[-8000:]
    assert len([r for r in lines if r.get("ok")]) == 11, report

    # What the browser did, as the database has it: one LoRA trained to completion; the
    # duplicate name, the two images and the spent budget created nothing.
    assert await _status(pool, user, train_name) == [("completed", True)]
    assert await _count(pool, user, mine_name) == 1
    assert await _count(pool, user, f"{train_name} (over budget)") == 0
    shots = ("upload-training", "upload-completed", "library", "library-detail", "admin", "upload-budget")
    for name in shots:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name
