"""`loraflow dev`: the whole service on one machine, as one process tree.

Temporal's dev server, embedded PostgreSQL (unless DATABASE_URL is set), the migrations, the
worker and the API. SIGINT/SIGTERM stop every child; the data directory keeps all state, so a
restart resumes where it stopped (Temporal replays open workflows).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraflow.db import migrate
from loraflow.devstack import embedded
from loraflow.logging import get_logger
from loraflow.settings import Settings, settings_env

log = get_logger(__name__)


@dataclass
class DevStack:
    settings: Settings
    _pg_server: Any = None
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)  # the children's environment
    database_url: str = ""

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir.resolve()

    @property
    def temporal_port(self) -> int:
        return self.settings.dev_temporal_port

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.temporal_ui_port}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        try:
            await self._start()
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> None:
        if self.settings.database_url:
            self.database_url = self.settings.database_url
            log.info("postgres_external")
        else:
            self._pg_server, self.database_url = await asyncio.to_thread(
                embedded.start_postgres, self.data_dir / "pg"
            )
            log.info("postgres_started", data=str(self.data_dir / "pg"))
        applied = await asyncio.to_thread(
            migrate, self.database_url, self.settings.sql_dir, monthly_limit=self.settings.monthly_limit
        )
        log.info("migrations_done", applied=applied)

        address = f"127.0.0.1:{self.temporal_port}"
        self._children["temporal"] = embedded.start_temporal(
            db_file=self.data_dir / "temporal.db",
            port=self.temporal_port,
            ui_port=self.settings.temporal_ui_port,
            namespace=self.settings.temporal_namespace,
            log_file=self.data_dir / "logs" / "temporal.log",
        )
        await embedded.wait_for_temporal(address, self.settings.temporal_namespace)
        log.info("temporal_started", address=address, ui=self.ui_url)

        env = embedded.child_env(
            **{
                **settings_env(self.settings),
                "DATABASE_URL": self.database_url,
                "TEMPORAL_ADDRESS": address,
                "LORAFLOW_DATA_DIR": str(self.data_dir),
                # The dev stack's own API and worker may run on the development secret.
                "LORAFLOW_ALLOW_DEV_SECRET": "1",
                # ... and its API signs a browser in with a link (GET /dev/sign-in).
                "LORAFLOW_DEV_SIGN_IN": "1",
            }
        )
        self._env = env
        self.start_worker()
        self._children["api"] = self._start_child("api")
        await self._wait_for_api()

    def _start_child(self, name: str, *flags: str, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "loraflow.cli", name, *flags],
            env={**self._env, **env},
            preexec_fn=embedded.die_with_parent,
        )

    def start_worker(self, **env: str) -> None:
        """Start the worker (both task queues); ``env`` adds settings to the stack's, e.g. the
        fault drills' pacing (``benchmarks/worker_kills.py`` kills it and starts it again)."""
        self._children["worker"] = self._start_child("worker", "--all", **env)

    def kill_worker(self) -> None:
        """SIGKILL the worker, as a machine lost: no shutdown, no goodbye to Temporal."""
        worker = self._children.pop("worker")
        worker.kill()
        worker.wait()

    async def _wait_for_api(self, timeout: float = 60.0) -> None:
        import httpx

        async with httpx.AsyncClient() as client:
            for _ in range(int(timeout / 0.2)):
                self.raise_if_child_died()
                try:
                    r = await client.get(f"{self.api_url}/healthz", timeout=2)
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise embedded.EmbeddedError(f"the API did not become healthy at {self.api_url}")

    def raise_if_child_died(self) -> None:
        for name, proc in self._children.items():
            code = proc.poll()
            if code is not None:
                raise embedded.EmbeddedError(f"{name} exited with status {code}")

    def stop(self) -> None:
        # API first (stop taking requests), then the worker, then the servers.
        for name in ("api", "worker", "temporal"):
            proc = self._children.pop(name, None)
            if proc is not None:
                embedded.stop_process(proc)
                log.info("stopped", process=name)
            if name == "worker":
                self._end_local_pods()
        if self._pg_server is not None:
            self._pg_server.cleanup()
            self._pg_server = None
            log.info("stopped", process="postgres")

    def _end_local_pods(self) -> None:
        """Local pods (agent and trainer) outlive a worker by design, but not the dev stack: with
        everything else gone they would burn the CPU for nothing. Their workflows find them gone
        when the stack starts again and train on new pods."""
        if self.settings.compute_provider != "local":
            return
        from loraflow.compute.local import LocalProvider

        provider = LocalProvider(self.data_dir, base_model="unused")
        for pod in provider.list_pods():
            provider.terminate(pod.handle.pod_id)
            log.info("stopped", process="pod", pod_id=pod.handle.pod_id)

    def sign_in_url(self, user: str = "demo", next_page: str = "/upload") -> str:
        """The link that signs a browser in to the pages as ``user`` (the dev API's own route)."""
        return f"{self.api_url}/dev/sign-in?user={user}&next={next_page}"

    def banner(self) -> str:
        pages = (
            f"  Pages          {self.api_url}/\n"
            f"  Sign in        {self.sign_in_url()}   (as demo@loraflow.local)\n"
            f"  Sign in admin  {self.sign_in_url('admin', '/admin')}&admin=true\n"
            if (self.settings.web_dir / "index.html").is_file()
            else "  Pages          not built: `cd frontend && npm ci && npm run build`\n"
        )
        return (
            "\nloraflow is running\n"
            f"  API            {self.api_url}   (docs: {self.api_url}/docs)\n"
            + pages
            + f"  Temporal UI    {self.ui_url}\n"
            f"  Temporal gRPC  127.0.0.1:{self.temporal_port}\n"
            f"  data           {self.data_dir}\n"
            "Press Ctrl-C to stop.\n"
        )


async def run_dev(settings: Settings) -> int:
    stack = DevStack(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stack.start()
    print(stack.banner(), flush=True)
    code = 0
    try:
        while not stop.is_set():
            try:
                stack.raise_if_child_died()
            except embedded.EmbeddedError as exc:
                log.error("child_died", error=str(exc))
                code = 1
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        stack.stop()
    return code
