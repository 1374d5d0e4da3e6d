"""`loraflow dev` stopped (Ctrl-C) while a training runs, then started again: what is left running
in between, and how long the training takes to finish after the restart.

    .venv/bin/python benchmarks/dev_restart.py

Runs `loraflow dev` in a fresh data directory, creates the demo's LoRA through the API, waits for
its training to start, sends SIGINT, counts the local pods (agents, trainers) still alive, starts
`loraflow dev` again on the same data directory and waits for the LoRA to end. Prints the stop's
duration, the pods alive after it, the time from the restart to the end, and the pods used.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loraflow.auth import issue_token
from loraflow.devstack.demo import draw_character
from loraflow.devstack.embedded import child_env
from loraflow.net import free_port
from loraflow.settings import DEV_JWT_SECRET


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
        stdout=subprocess.DEVNULL,
    )


def _wait_healthy(api: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("loraflow dev did not become healthy")


def _status(api: str, lora_id: str, headers: dict[str, str]) -> dict:
    return httpx.get(f"{api}/api/v1/lora-models/{lora_id}/status", headers=headers, timeout=10).json()


def _live_pods(data_dir: Path) -> list[str]:
    """Pods whose agent process is still running (trainers die with their agent)."""
    alive = []
    for record in (data_dir / "pods").glob("*.json"):
        pid = json.loads(record.read_text()).get("pid")
        if pid and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            alive.append(record.stem)
    return alive


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="loraflow-dev-restart-")) / "data"
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    api = f"http://127.0.0.1:{ports['api']}"
    headers = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, user_id=str(uuid.uuid4()))}"}

    dev = _start(data_dir, ports)
    try:
        _wait_healthy(api)
        files = [("images", (f"view{i}.png", draw_character(i), "image/png")) for i in range(4)]
        created = httpx.post(
            f"{api}/api/v1/lora-models", data={"name": "restarted"}, files=files, headers=headers, timeout=60
        )
        lora_id = created.json()["lora_id"]
        while _status(api, lora_id, headers).get("phase") != "training":
            time.sleep(0.2)
        time.sleep(3)  # a few steps in: the trainer is working (the point is to stop mid-training)
        alive_before = _live_pods(data_dir)
        stopping = time.monotonic()
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=120)
        stop_s = time.monotonic() - stopping
        alive_after = _live_pods(data_dir)

        restarted = time.monotonic()
        dev = _start(data_dir, ports)
        _wait_healthy(api)
        while (status := _status(api, lora_id, headers))["training_status"] not in ("completed", "failed"):
            time.sleep(0.5)
        end_s = time.monotonic() - restarted
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=120)
    pods = sorted(p.stem for p in (data_dir / "pods").glob("*.json"))
    print(f"pods alive while training: {len(alive_before)}; after Ctrl-C ({stop_s:.1f} s): "
          f"{len(alive_after)}")  # fmt: skip
    print(f"restarted: the training ended {status['training_status']} {end_s:.1f} s after the restart")
    print(f"pods used: {len(pods)} ({', '.join(pods)}); left alive at the end: {len(_live_pods(data_dir))}")


if __name__ == "__main__":
    main()
