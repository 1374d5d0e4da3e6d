"""A local server speaking the part of RunPod's REST API v2 that ``RunPodProvider`` uses, as the
vendor's OpenAPI document describes it (``../shared/vendor-apis/runpod-rest-v2-openapi.json``),
not as our client reads it: every request is validated against the typed contract in
``loraflow.compute.runpod_api``, and every answer is what the document says.

- ``POST /v2/pods``: a body that breaks the schema (an unknown property, ``gpu.typeId`` instead
  of ``gpu.id``, …) gets 422 problem+json with ``errors``; a handler rule (exactly one of
  gpu/cpu, both CUDA constraints) a 400; a GPU type without capacity a 400 whose ``detail`` is
  prose; a pool the key cannot use 403; an empty balance 402; success 201 with the pod in
  ``PROVISIONING``.
- Pods then go ``PROVISIONING → STARTING → RUNNING`` with ``runtime: null`` at first, then
  ``RUNNING`` with a runtime (or ``ERROR``, on request); ``cost`` is the price per hour and 0.0
  once terminated.
- ``GET /v2/pods`` answers ``{"pods": [...]}`` and ignores unknown query parameters (it cannot
  filter by name); terminated pods no longer appear. ``DELETE`` answers 204, then 404.
- Every authenticated answer carries ``RateLimit``/``RateLimit-Policy``; past the per-minute
  quota a request gets 429 with an integer ``Retry-After``. Injected 429/5xx and lost create
  responses test the client's retries.
- Errors are problem+json (``title``, ``status``, ``detail``) with ``application/problem+json``.

"Starting a pod" launches the real pod agent as a local process, with the pod's env plus what
RunPod sets inside a pod (``RUNPOD_POD_ID`` and a pod-scoped ``RUNPOD_API_KEY``, which may only
read and remove its own pod). Its HTTP port is reached through a proxy route, as RunPod's
``https://{podId}-{port}.proxy.runpod.net`` reaches a pod: ``{url}/proxy/{pod_id}-{port}/...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from loraflow.compute.runpod_api import CreatePodRequest, ListPodsResponse, Pod, PodStatus
from loraflow.net import free_port
from loraflow.threads import default_threads

_ROOT = Path(__file__).resolve().parent.parent.parent
_NO_CAPACITY = "There are no longer any instances available with the requested specifications. Please refresh and try again."  # noqa: E501 - RunPod's prose


@dataclass
class FakePod:
    id: str
    name: str
    gpu_type: str
    env: dict[str, str]
    body: dict[str, Any]  # the create request, as sent
    created_at: float
    port: int
    pod_key: str  # RunPod's pod-scoped RUNPOD_API_KEY
    process: subprocess.Popen[bytes] | None = None
    gets: int = 0
    terminated: bool = False
    terminated_by: str | None = None  # "api" (our API key) or "pod" (the pod's own key)
    error: bool = False


@dataclass
class FakeRunPod:
    api_key: str
    workdir: Path
    base_model_override: str | None = None  # the tiny model's folder, in place of the image's
    price: float = 0.69
    url: str = ""  # set once served: the pods' RUNPOD API base and the proxy's address
    # GETs of a pod before it leaves PROVISIONING, leaves STARTING, and gets its runtime.
    provisioning_gets: int = 1
    starting_gets: int = 1
    runtime_after_gets: int = 2
    no_instances: set[str] = field(default_factory=set)
    forbidden_gpus: set[str] = field(default_factory=set)
    balance_empty: bool = False
    error_on_start: bool = False  # new pods go to ERROR instead of RUNNING
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # next answers
    lose_next_create: bool = False  # make the pod, then answer too late
    per_minute: int = 60  # RateLimit-Policy's quota for the "minute" window
    window_s: int = 60  # that window's length (shortened in tests that wait for a reset)
    pods: dict[str, FakePod] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    rate_limited: int = 0  # 429s answered because the quota was spent (not injected ones)
    _window: tuple[int, int] = (0, 0)  # (minute, requests in it)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the API ------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2/pods", self._pods, methods=["GET", "POST"]),
                Route("/v2/pods/{pod_id}", self._pod, methods=["GET", "DELETE"]),
                Route("/proxy/{target}/{path:path}", self._proxy, methods=["GET", "PUT", "POST"]),
            ]
        )

    @property
    def proxy_url(self) -> str:
        """The client's ``proxy_url`` for this fake (RunPod's is ``https://{pod_id}-{port}.proxy.runpod.net``)."""
        return f"{self.url}/proxy/{{pod_id}}-{{port}}"

    def _problem(self, status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
        headers = extra.pop("headers", None)
        return JSONResponse(
            {"title": title, "status": status, "detail": detail, **extra},
            status_code=status,
            media_type="application/problem+json",
            headers=headers,
        )

    def _caller(self, request: Request) -> str | None:
        """``"api"`` for the account's key, a pod id for a pod-scoped key, None otherwise."""
        supplied = request.headers.get("authorization", "")
        if supplied == f"Bearer {self.api_key}":
            return "api"
        for pod in self.pods.values():
            if supplied == f"Bearer {pod.pod_key}":
                return pod.id
        return None

    def _rate_headers(self, remaining: int, reset_s: int) -> dict[str, str]:
        return {
            "RateLimit": f'"minute";r={remaining};t={reset_s}',
            "RateLimit-Policy": f'"minute";q={self.per_minute};w={self.window_s}',
        }

    async def _gate(self, request: Request) -> tuple[str | None, Response | None, dict[str, str]]:
        self.requests.append((request.method, request.url.path))
        caller = self._caller(request)
        if caller is None:
            return None, self._problem(401, "Unauthorized", "missing bearer token"), {}
        now = time.time()
        minute, reset = int(now // self.window_s), self.window_s - int(now % self.window_s)
        with self._lock:
            count = self._window[1] + 1 if self._window[0] == minute else 1
            self._window = (minute, count)
            headers = self._rate_headers(max(0, self.per_minute - count), reset)
            if count > self.per_minute:
                self.rate_limited += 1
                return caller, self._problem(
                    429, "Too Many Requests", "rate limit exceeded for the minute window",
                    headers={"Retry-After": str(reset), **headers},
                ), headers  # fmt: skip
            if self.failures:
                status, extra = self.failures.pop(0)
                title = "Too Many Requests" if status == 429 else "Service Unavailable"
                return (
                    caller,
                    self._problem(status, title, "try again later", headers={**headers, **extra}),
                    {},
                )
        return caller, None, headers

    async def _pods(self, request: Request) -> Response:
        caller, refused, headers = await self._gate(request)
        if refused is not None:
            return refused
        if caller != "api":
            return self._problem(403, "Forbidden", "access denied")
        if request.method == "GET":  # listPods: query parameters other than includeClusterPods are ignored
            listed = {"pods": [self._json(p) for p in self.pods.values() if not p.terminated]}
            ListPodsResponse.model_validate(listed)  # the fake answers what the document says
            return JSONResponse(listed, headers=headers)
        return await self._create(request, headers)

    async def _create(self, request: Request, headers: dict[str, str]) -> Response:
        try:
            body = await request.json()
            create = CreatePodRequest.model_validate(body)
        except (ValueError, ValidationError) as exc:
            errors = (
                [f"$.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
                if isinstance(exc, ValidationError)
                else ["$: body is not JSON"]
            )
            return self._problem(422, "Unprocessable Entity", "Request validation failed.", errors=errors)
        if rule := create.handler_rule_violation():
            return self._problem(400, "Bad Request", rule)
        assert create.gpu is not None
        gpu_type = create.gpu.id
        if self.balance_empty:
            return self._problem(402, "Payment Required", "insufficient balance")
        if gpu_type in self.forbidden_gpus:
            return self._problem(403, "Forbidden", f"your account cannot deploy {gpu_type}")
        if gpu_type in self.no_instances:
            return self._problem(400, "Bad Request", _NO_CAPACITY)
        pod_id = uuid.uuid4().hex[:14]
        pod = FakePod(
            id=pod_id,
            name=create.name,
            gpu_type=gpu_type,
            env=dict(create.env or {}),
            body=body,
            created_at=time.time(),
            port=free_port(),
            pod_key=f"rpa_pod_{uuid.uuid4().hex}",
            error=self.error_on_start,
        )
        self.pods[pod.id] = pod
        if not pod.error:
            self._start(pod)
        answer = self._json(pod)
        if self.lose_next_create:
            self.lose_next_create = False
            await asyncio.sleep(5)  # longer than the client waits: the response is lost
        return JSONResponse(answer, status_code=201, headers=headers)

    async def _pod(self, request: Request) -> Response:
        caller, refused, headers = await self._gate(request)
        if refused is not None:
            return refused
        pod = self.pods.get(request.path_params["pod_id"])
        if caller not in ("api", getattr(pod, "id", None)):
            return self._problem(403, "Forbidden", "access denied")
        if pod is None or pod.terminated:
            return self._problem(404, "Not Found", "pod not found")
        if request.method == "DELETE":
            self.terminate(pod, by="api" if caller == "api" else "pod")
            return Response(status_code=204, headers=headers)
        pod.gets += 1
        return JSONResponse(self._json(pod), headers=headers)

    async def _proxy(self, request: Request) -> Response:
        """RunPod's HTTP proxy in front of the pod's port (it cuts requests at 100 s)."""
        pod_id, _, port = request.path_params["target"].rpartition("-")
        pod = self.pods.get(pod_id)
        if pod is None or pod.terminated or self._status(pod) != PodStatus.RUNNING or port != "8080":
            return Response("pod not reachable", status_code=502)
        client = httpx.AsyncClient(timeout=httpx.Timeout(100.0))
        upstream = client.build_request(
            request.method,
            f"http://127.0.0.1:{pod.port}/{request.path_params['path']}",
            params=request.query_params,
            headers={k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")},
            content=await request.body(),
        )
        try:
            answer = await client.send(upstream, stream=True)
        except httpx.TransportError:
            await client.aclose()
            return Response("pod not reachable", status_code=502)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in answer.aiter_raw():
                yield chunk

        async def close() -> None:
            await answer.aclose()
            await client.aclose()

        passed = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding")
        }
        return StreamingResponse(body(), status_code=answer.status_code, headers=passed,
                                 background=BackgroundTask(close))  # fmt: skip

    # -- the machines ---------------------------------------------------------------------

    def _status(self, pod: FakePod) -> PodStatus:
        if pod.terminated:
            return PodStatus.TERMINATED
        if pod.gets < self.provisioning_gets:
            return PodStatus.PROVISIONING
        if pod.gets < self.provisioning_gets + self.starting_gets:
            return PodStatus.STARTING
        return PodStatus.ERROR if pod.error else PodStatus.RUNNING

    def _json(self, pod: FakePod) -> dict[str, Any]:
        """A pod as ``#/components/schemas/Pod`` has it: every required property present."""
        status = self._status(pod)
        running = status == PodStatus.RUNNING and pod.gets > self.runtime_after_gets
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pod.created_at))
        actions = {
            PodStatus.RUNNING: ["stop", "restart", "terminate"],
            PodStatus.EXITED: ["start", "terminate"],
            PodStatus.ERROR: ["start", "terminate"],
            PodStatus.TERMINATED: [],
        }.get(status, ["stop", "terminate"])
        data = {
            "id": pod.id,
            "name": pod.name,
            "status": str(status),
            "actions": actions,
            "image": pod.body.get("image", ""),
            "args": pod.body.get("args", ""),
            "disk": pod.body.get("disk", 50),
            "mounts": {},
            "ports": pod.body.get("ports", []),
            "env": pod.env,
            "registry": None,
            "gpu": {"id": pod.gpu_type, "count": pod.body["gpu"].get("count", 1)},
            "cloud": pod.body.get("cloud", "SECURE"),
            "dataCenterId": None if status == PodStatus.PROVISIONING else "US-TX-3",
            "cudaVersion": None if status == PodStatus.PROVISIONING else "12.8",
            "ssh": {},
            "template": None,
            "cost": 0.0 if status in (PodStatus.EXITED, PodStatus.TERMINATED) else self.price,
            "locked": False,
            "runtime": self._runtime(pod) if running else None,
            "createdAt": created,
            "startedAt": created if running else None,
            "globalNetworking": {"enabled": False},
        }
        Pod.model_validate(data)  # the fake answers what the document says
        return data

    def _runtime(self, pod: FakePod) -> dict[str, Any]:
        # An HTTP port: reached through the proxy; the ip is RunPod's internal one.
        port = {"private": 8080, "public": 8080, "type": "http", "ip": "100.65.0.2"}
        return {"uptime": int(time.time() - pod.created_at), "ports": [port]}

    def _start(self, pod: FakePod) -> None:
        workdir = self.workdir / pod.id
        workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(pod.env)
        env.update(RUNPOD_POD_ID=pod.id, RUNPOD_API_KEY=pod.pod_key, LORAFLOW_RUNPOD_API_URL=self.url)
        # The "GPU machine" is this one: its share of the cores, as a local pod gets
        # (loraflow.threads); torch over every core beside another training thrashes.
        env.setdefault("OMP_NUM_THREADS", str(default_threads()))
        if self.base_model_override:
            env["LORAFLOW_BASE_MODEL"] = self.base_model_override
        with (workdir / "agent.log").open("ab") as log:
            pod.process = subprocess.Popen(
                [sys.executable, "-m", "training_scripts.pod_agent", "--host", "127.0.0.1",
                 "--port", str(pod.port), "--workdir", str(workdir)],
                env=env, cwd=_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def terminate(self, pod: FakePod, by: str = "api") -> None:
        if not pod.terminated:
            pod.terminated, pod.terminated_by = True, by
        if pod.process and pod.process.poll() is None:
            if by == "pod":
                # The pod asked to be removed: let its agent finish its own request first.
                threading.Timer(1.0, self._kill, [pod]).start()
            else:
                self._kill(pod)

    def _kill(self, pod: FakePod) -> None:
        if pod.process and pod.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.process.pid, signal.SIGKILL)
            pod.process.wait()

    def close(self) -> None:
        for pod in self.pods.values():
            self.terminate(pod)
            self._kill(pod)

    def live(self) -> list[FakePod]:
        return [p for p in self.pods.values() if not p.terminated]

    def sent(self, pod_id: str) -> str:
        """The create body a pod was made from, as JSON (for assertions)."""
        return json.dumps(self.pods[pod_id].body, sort_keys=True)
