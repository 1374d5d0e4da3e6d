"""`loraflow api` as its own process against a database of the test's choosing, for tests that
stop, starve or signal it (the session's API in tests/conftest.py must stay up), or that need it
configured otherwise."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from loraflow import net
from loraflow.devstack import embedded

__all__ = ["start_api"]


def start_api(
    dsn: str, temporal_address: str, log: Path, **settings: str
) -> tuple[subprocess.Popen[bytes], str]:
    """The process and its base URL, once it answers HTTP (whatever /healthz says). ``settings``
    are more environment variables for it (``LORAFLOW_SCREENING_LABELS="FACE_FEMALE"``)."""
    port = net.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loraflow.cli", "api", "--port", str(port)],
        env=embedded.child_env(
            DATABASE_URL=dsn,
            TEMPORAL_ADDRESS=temporal_address,
            LORAFLOW_LOG_LEVEL="WARNING",
            LORAFLOW_ALLOW_DEV_SECRET="1",
            **settings,
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    embedded.stop_process(proc)
    raise AssertionError("the API did not start")
