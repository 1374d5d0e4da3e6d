"""PostgreSQL stops under a running API: requests are answered fast and honestly (503 with
``Retry-After`` in about the pool's 2 s wait, not a 500 after 30 s), and the API serves again
promptly once the database is back. A real PostgreSQL of its own, really stopped."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loraflow.auth import issue_token
from loraflow.db import migrate
from loraflow.devstack import embedded
from loraflow.settings import Settings
from tests.conftest import JWT_SECRET
from tests.helpers.api_process import start_api


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    _server, dsn = embedded.start_postgres(tmp_path / "pg")
    migrate(dsn, Settings().sql_dir, monthly_limit=5)
    yield tmp_path / "pg", dsn
    embedded.start_postgres(tmp_path / "pg")[0].cleanup()  # whatever state the test left it in


def test_an_outage_is_answered_with_503_at_once_and_recovery_is_prompt(
    own_database: tuple[Path, str], temporal_address: str, tmp_path: Path
) -> None:
    pg_dir, dsn = own_database
    proc, url = start_api(dsn, temporal_address, tmp_path / "api.log")
    user = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {issue_token(JWT_SECRET, user_id=user)}"}
    library = f"{url}/api/v1/lora-models"
    try:
        assert httpx.get(library, headers=headers, timeout=10).status_code == 200

        embedded.start_postgres(pg_dir)[0].cleanup()  # attach, then stop the server
        for _ in range(3):
            started = time.monotonic()
            r = httpx.get(library, headers=headers, timeout=30)
            took = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable" and r.headers["retry-after"].isdigit()
            assert took < 3.0, f"answered after {took:.1f} s"
        health = httpx.get(f"{url}/healthz", timeout=30)
        assert health.status_code == 503 and health.json()["database"] == {"ok": False}

        embedded.start_postgres(pg_dir)
        back = time.monotonic()
        while (r := httpx.get(library, headers=headers, timeout=30)).status_code != 200:
            assert r.status_code == 503, r.text
            assert time.monotonic() - back < 5.0, "not serving 5 s after the database came back"
        print(f"database back: serving again after {time.monotonic() - back:.2f} s")
    finally:
        embedded.stop_process(proc)
