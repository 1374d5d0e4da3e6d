"""A local server speaking the subset of RunPod's REST API v2 that ``RunPodProvider`` uses:
``POST/GET /v2/pods``, ``GET/DELETE /v2/pods/{id}``, with RunPod's JSON shapes — including the
phase where a pod is RUNNING but its ``runtime`` is still null — plus injected 429s and 5xx,
GPU types without instances, and creates whose response never arrives.

"Starting a pod" launches the real pod agent as a local process (its token and base model
from the pod's env), so a training runs end to end through the RunPod provider.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loraflow.embedded import free_port

_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class FakePod:
    id: str
    name: str
    gpu_type: str
    env: dict[str, str]
    created_at: float
    port: int
    process: subprocess.Popen[bytes] | None = None
    gets: int = 0
    terminated: bool = False


@dataclass
class FakeRunPod:
    api_key: str
    workdir: Path
    base_model_override: str | None = None  # the tiny model's folder, in place of the image's
    price: float = 0.69
    runtime_after_gets: int = 2  # GETs that see RUNNING with runtime null first
    no_instances: set[str] = field(default_factory=set)
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # next answers
    lose_next_create: bool = False  # make the pod, then answer too late
    pods: dict[str, FakePod] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the API ------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2/pods", self._pods, methods=["GET", "POST"]),
                Route("/v2/pods/{pod_id}", self._pod, methods=["GET", "DELETE"]),
            ]
        )

    async def _gate(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        with self._lock:
            if self.failures:
                status, headers = self.failures.pop(0)
                return JSONResponse({"error": "try again later"}, status_code=status, headers=headers)
        return None

    async def _pods(self, request: Request) -> Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        if request.method == "GET":
            name = request.query_params.get("name")
            items = [
                self._json(p) for p in self.pods.values() if not p.terminated and (not name or p.name == name)
            ]
            return JSONResponse(items)
        body = await request.json()
        gpu_type = body["gpu"]["typeId"]
        if gpu_type in self.no_instances:
            message = "There are no longer any instances available with the requested specifications"
            return JSONResponse({"error": f"{message} ({gpu_type})"}, status_code=409)
        pod = FakePod(
            id=uuid.uuid4().hex[:14],
            name=body["name"],
            gpu_type=gpu_type,
            env=dict(body.get("env") or {}),
            created_at=time.time(),
            port=free_port(),
        )
        self.pods[pod.id] = pod
        self._start(pod)
        if self.lose_next_create:
            self.lose_next_create = False
            await asyncio.sleep(5)  # longer than the client waits: the response is lost
        return JSONResponse(self._json(pod), status_code=201)

    async def _pod(self, request: Request) -> Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        pod = self.pods.get(request.path_params["pod_id"])
        if pod is None or pod.terminated:
            return JSONResponse({"error": "pod not found"}, status_code=404)
        if request.method == "DELETE":
            self.terminate(pod)
            return Response(status_code=204)
        pod.gets += 1
        return JSONResponse(self._json(pod))

    # -- the machines ---------------------------------------------------------------------

    def _json(self, pod: FakePod) -> dict[str, Any]:
        running = pod.gets > self.runtime_after_gets
        return {
            "id": pod.id,
            "name": pod.name,
            "status": "RUNNING",
            "image": "ghcr.io/loraflow/trainer:test",
            "gpu": {"typeId": pod.gpu_type, "count": 1},
            "costPerHr": self.price,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pod.created_at)),
            "runtime": self._runtime(pod) if running else None,
        }

    def _runtime(self, pod: FakePod) -> dict[str, Any]:
        port = {
            "ip": "127.0.0.1",
            "isIpPublic": True,
            "privatePort": 8080,
            "publicPort": pod.port,
            "type": "http",
        }
        return {"uptimeInSeconds": int(time.time() - pod.created_at), "ports": [port]}

    def _start(self, pod: FakePod) -> None:
        workdir = self.workdir / pod.id
        workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(pod.env)
        if self.base_model_override:
            env["LORAFLOW_BASE_MODEL"] = self.base_model_override
        with (workdir / "agent.log").open("ab") as log:
            pod.process = subprocess.Popen(
                [sys.executable, "-m", "training_scripts.pod_agent", "--host", "127.0.0.1",
                 "--port", str(pod.port), "--workdir", str(workdir)],
                env=env, cwd=_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def terminate(self, pod: FakePod) -> None:
        pod.terminated = True
        if pod.process and pod.process.poll() is None:
            os.killpg(pod.process.pid, signal.SIGKILL)
            pod.process.wait()

    def close(self) -> None:
        for pod in self.pods.values():
            self.terminate(pod)

    def live(self) -> list[FakePod]:
        return [p for p in self.pods.values() if not p.terminated]
