"""The local compute provider: a "pod" is the pod agent as a process on this machine.

It behaves like a remote pod where it matters: it outlives the worker that created it (its own
session, so a worker killed with SIGKILL does not take it down), it is found again by name,
and it is gone only once terminated. Records live in ``DATA_DIR/pods/{name}.json``.

Its agents obey the same dead-man switch as RunPod's (``LORAFLOW_AGENT_IDLE_S`` and a hard
deadline fixed at creation): an agent that ends itself leaves ``ended.json`` in its folder and
exits, and the pod is terminated from then on (never restarted).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from loraflow.compute.base import PodState, PodStatus
from loraflow.contracts.lora_training import PodHandle
from loraflow.errors import ProviderError
from loraflow.net import free_port
from loraflow.threads import default_threads

_PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


class LocalProvider:
    name = "local"

    def __init__(
        self,
        data_dir: Path,
        *,
        base_model: str,
        price_per_hour: float = 0.0,
        agent_idle_s: float = 900.0,
        max_pod_s: float = 3 * 3600.0,
        threads_per_pod: int | None = None,
        latency_s: float = 0.0,
    ) -> None:
        """``latency_s``: how much longer each create and terminate takes, like a cloud
        provider's API call (``LORAFLOW_LOCAL_PROVIDER_LATENCY_S``), for fault drills."""
        self._dir = data_dir.resolve() / "pods"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._base_model = base_model
        self._price = price_per_hour
        self._agent_idle_s = agent_idle_s
        self._max_pod_s = max_pod_s
        self._threads = threads_per_pod or default_threads()
        self._latency_s = latency_s

    # -- interface ----------------------------------------------------------------------

    def create(self, name: str) -> PodState:
        _check_name(name)
        with self._locked():
            record = self._read(name)
            if record is None:
                record = {
                    "pod_id": "local-" + hashlib.sha256(name.encode()).hexdigest()[:16],
                    "name": name,
                    "token": secrets.token_urlsafe(24),
                    "port": free_port(),
                    "created_at": time.time(),
                    "deadline": time.time() + self._max_pod_s,
                    "terminated": False,
                    "pid": None,
                }
                self._write(record)  # recorded before the process exists: a crash here leaks nothing
            if record["terminated"] or self._ended_itself(record):
                raise ProviderError(f"pod {name} was terminated; names are not reused", retryable=False)
            if not self._alive(record):
                record["pid"] = self._spawn(record)  # like a pod whose container restarts
                self._write(record)
        # The pod exists before its creator hears so: a caller lost now must find it by name.
        time.sleep(self._latency_s)
        return self._pod(record)

    def describe(self, pod_id: str) -> PodState:
        record = self._by_id(pod_id)
        if record is None:
            gone = PodHandle(self.name, pod_id, "", None, "", self._price, 0.0)
            return PodState(gone, PodStatus.terminated)
        return self._pod(record)

    def terminate(self, pod_id: str) -> None:
        time.sleep(self._latency_s)  # the request on its way
        with self._locked():
            record = self._by_id(pod_id)
            if record is None or record["terminated"]:
                return
            process = self._process(record)
            if process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                if not _ended(process, 10):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    if not _ended(process, 10):
                        raise ProviderError(f"pod {pod_id} did not stop", retryable=True)
            record["terminated"] = True
            record["terminated_at"] = time.time()
            self._write(record)

    def list_pods(self) -> list[PodState]:
        pods = []
        for path in sorted(self._dir.glob("*.json")):
            record = json.loads(path.read_text())
            if not record["terminated"] and (pod := self._pod(record)).status != PodStatus.terminated:
                pods.append(pod)
        return pods

    def price_per_hour(self) -> float:
        return self._price

    # -- internals ----------------------------------------------------------------------

    def _pod(self, record: dict) -> PodState:
        if record["terminated"] or (self._ended_itself(record) and not self._alive(record)):
            status = PodStatus.terminated
        elif self._alive(record):
            status = PodStatus.running
        else:
            status = PodStatus.exited
        handle = PodHandle(
            provider=self.name,
            pod_id=record["pod_id"],
            name=record["name"],
            endpoint=f"http://127.0.0.1:{record['port']}",
            token=record["token"],
            price_per_hour=self._price,
            created_at=record["created_at"],
        )
        return PodState(handle, status)

    def _spawn(self, record: dict) -> int:
        workdir = self._dir / record["name"]
        workdir.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            LORAFLOW_AGENT_TOKEN=record["token"],
            LORAFLOW_BASE_MODEL=self._base_model,
            LORAFLOW_AGENT_IDLE_S=str(self._agent_idle_s),
            LORAFLOW_AGENT_DEADLINE=str(record.get("deadline") or record["created_at"] + self._max_pod_s),
            # The trainer's share of the cores (loraflow.threads), not all of them.
            OMP_NUM_THREADS=str(self._threads),
            MKL_NUM_THREADS=str(self._threads),
        )
        with (workdir / "agent.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "training_scripts.pod_agent", "--host", "127.0.0.1",
                 "--port", str(record["port"]), "--workdir", str(workdir)],
                env=env,
                cwd=_PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a pod outlives the worker that asked for it
            )  # fmt: skip
        return process.pid

    def _process(self, record: dict) -> psutil.Process | None:
        if not record.get("pid"):
            return None
        try:
            process = psutil.Process(record["pid"])
            # Guard against pid reuse: it must be our agent, for this pod.
            if (
                str(self._dir / record["name"]) in " ".join(process.cmdline())
                and process.status() != "zombie"
            ):
                return process
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        return None

    def _ended_itself(self, record: dict) -> bool:
        """The agent's dead-man switch fired (see training_scripts/pod_agent.py)."""
        return (self._dir / record["name"] / "ended.json").exists()

    def _alive(self, record: dict) -> bool:
        return self._process(record) is not None

    def _read(self, name: str) -> dict | None:
        path = self._dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def _by_id(self, pod_id: str) -> dict | None:
        for path in self._dir.glob("*.json"):
            record = json.loads(path.read_text())
            if record["pod_id"] == pod_id:
                return record
        return None

    def _write(self, record: dict) -> None:
        path = self._dir / f"{record['name']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Several worker processes may share this provider: one create/terminate at a time.
        with (self._dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _ended(process: psutil.Process, timeout: float) -> bool:
    """Whether the process ended within ``timeout``; a zombie has (its parent, which may not be
    us, has yet to reap it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            process.wait(0.1)  # reaps it if it is ours
            return True
        except psutil.TimeoutExpired:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False


def _check_name(name: str) -> None:
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_" for c in name):
        raise ProviderError(f"bad pod name {name!r}", retryable=False)
