"""`loraflow worker` as its own process, for tests that kill it or configure it differently
from the session's in-process worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loraflow.devstack.embedded import child_env
from loraflow.settings import Settings


def loaded_torch(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has loaded torch's native library (Linux: its memory map): a worker
    that never did has generated nothing and loaded no model."""
    return "libtorch" in Path(f"/proc/{process.pid}/maps").read_text()


def start_worker(
    settings: Settings, task_queue: str, log: Path, *args: str, **env: str
) -> subprocess.Popen[bytes]:
    """A worker on ``task_queue`` sharing the session's database, Temporal and data dir;
    ``args`` go to ``loraflow worker`` (``--gpu``), ``env`` adds or overrides settings."""
    environment = child_env(
        DATABASE_URL=settings.database_url or "",
        TEMPORAL_ADDRESS=settings.temporal_address,
        LORAFLOW_DATA_DIR=str(settings.data_dir),
        LORAFLOW_TASK_QUEUE=task_queue,
        LORAFLOW_LOG_LEVEL="INFO",
        LORAFLOW_ALLOW_DEV_SECRET="1",
        LORAFLOW_PUBLIC_URL=settings.public_base_url,
        **env,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "loraflow.cli", "worker", *args],
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
