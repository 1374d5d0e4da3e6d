"""`loraflow api` stops on SIGTERM within its grace period even while a request waits on the
database (here: on a table lock another session holds), instead of hanging until the database
answers."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from loraflow.auth import issue_token
from loraflow.cli import API_SHUTDOWN_GRACE_S
from loraflow.devstack import embedded
from tests.conftest import JWT_SECRET
from tests.helpers.api_process import start_api


def _request_cut_by_shutdown(url: str, headers: dict[str, str]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server ends it without an answer
        httpx.get(f"{url}/api/v1/lora-models", headers=headers, timeout=120)


def test_sigterm_ends_the_api_while_a_request_waits_on_the_database(
    pg_dsn: str, temporal_address: str, tmp_path: Path
) -> None:
    proc, url = start_api(pg_dsn, temporal_address, tmp_path / "api.log")
    headers = {"Authorization": f"Bearer {issue_token(JWT_SECRET, user_id=str(uuid.uuid4()))}"}
    try:
        assert httpx.get(f"{url}/api/v1/lora-models", headers=headers, timeout=10).status_code == 200
        deadline = time.monotonic() + 60
        with psycopg.connect(pg_dsn) as blocker:
            blocker.execute("LOCK TABLE lora_models IN ACCESS EXCLUSIVE MODE")  # held until rollback
            waiting = threading.Thread(target=_request_cut_by_shutdown, args=(url, headers), daemon=True)
            waiting.start()
            with psycopg.connect(pg_dsn, autocommit=True) as watcher:  # the request is blocked on the lock
                while not watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
                    [blocker.info.backend_pid],
                ).fetchone()[0]:
                    assert time.monotonic() < deadline, "the request never reached the database"
            proc.terminate()
            started = time.monotonic()
            try:
                proc.wait(timeout=API_SHUTDOWN_GRACE_S + 10)
            finally:
                blocker.rollback()
            took = time.monotonic() - started
        assert took <= API_SHUTDOWN_GRACE_S + 10
    finally:
        embedded.stop_process(proc)
