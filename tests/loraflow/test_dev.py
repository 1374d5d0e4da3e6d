"""`loraflow dev` as a user runs it: one process tree, clean shutdown, state kept across restarts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil

from loraflow.auth import issue_token
from loraflow.compute import PodStatus
from loraflow.compute.local import LocalProvider
from loraflow.devstack.embedded import child_env
from loraflow.net import free_port
from tests.conftest import JWT_SECRET


def _start(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    env = child_env(
        LORAFLOW_API_PORT=str(ports["api"]),
        LORAFLOW_DEV_TEMPORAL_PORT=str(ports["temporal"]),
        LORAFLOW_TEMPORAL_UI_PORT=str(ports["ui"]),
        LORAFLOW_LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "loraflow.cli", "dev", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(proc: subprocess.Popen[bytes], api: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("loraflow dev did not become healthy")


def _tree(proc: subprocess.Popen[bytes], data_dir: Path) -> list[psutil.Process]:
    """The dev process's descendants plus the PostgreSQL daemon (pg_ctl detaches it)."""
    procs = psutil.Process(proc.pid).children(recursive=True)
    pid_file = data_dir / "pg" / "postmaster.pid"
    procs.append(psutil.Process(int(pid_file.read_text().splitlines()[0])))
    return procs


def _stop(proc: subprocess.Popen[bytes], tree: list[psutil.Process], sig: signal.Signals) -> None:
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 0, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], f"left running: {[p.name() for p in alive]}"


def test_dev_stack_stops_cleanly_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    api = f"http://127.0.0.1:{ports['api']}"
    user = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {issue_token(JWT_SECRET, user_id=user)}"}

    proc = _start(data_dir, ports)
    _wait_ready(proc, api)
    tree = _tree(proc, data_dir)
    names = {p.name() for p in tree}
    assert {"temporal", "postgres"} <= names and len(tree) >= 4  # + worker and API
    # The dev stack's API (and only it: tests/api/test_web.py) signs a browser in with a link.
    sign_in = httpx.get(f"{api}/dev/sign-in", params={"user": "demo"})
    assert sign_in.status_code == 303 and "#access_token=" in sign_in.headers["location"]
    r = httpx.post(f"{api}/api/v1/lora-models", json={"name": "Survivor"}, headers=headers)
    assert r.status_code == 201
    lora_id = r.json()["lora_id"]
    assert (data_dir / "temporal.db").exists()
    # A local pod the stack's worker started (agent and, while training, its trainer) outlives
    # the worker by design, but not the dev stack.
    pods = LocalProvider(data_dir, base_model="unused")
    pod = pods.create("lf-dev-stop-test").handle
    agent = psutil.Process(json.loads((data_dir / "pods" / "lf-dev-stop-test.json").read_text())["pid"])
    _stop(proc, tree, signal.SIGINT)
    assert not agent.is_running() or agent.status() == psutil.STATUS_ZOMBIE
    assert pods.describe(pod.pod_id).status == PodStatus.terminated

    proc = _start(data_dir, ports)
    _wait_ready(proc, api)
    tree = _tree(proc, data_dir)
    r = httpx.get(f"{api}/api/v1/lora-models/{lora_id}", headers=headers)
    assert r.status_code == 200 and r.json()["name"] == "Survivor"
    _stop(proc, tree, signal.SIGTERM)
