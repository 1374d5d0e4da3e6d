"""RunPod: training pods on rented GPUs, through RunPod's REST API v2 (``/v2/pods``) with httpx.

Every request body and every answer goes through the typed models in
``loraflow.compute.runpod_api``, written from RunPod's own OpenAPI document.

Why not the ``runpod`` SDK: its pod functions are GraphQL mutations built by string
interpolation (env values land inside the query text), and RunPod retired REST v1 on
2026-11-15 and retires GraphQL in early 2027. REST v2 takes JSON bodies and is the API that stays.

Idempotent create: the pod's name derives from the workflow id; before creating, the provider
lists the pods and returns the one with that name (``listPods`` cannot filter by name: unknown
query parameters are ignored). A create whose response was lost is followed by that same
lookup, never by a blind POST. The agent's token is derived from the name with a secret (HMAC),
so a worker that restarts after a crash knows the token of a pod it finds again.

Capacity: ``createPod`` places one GPU type and never falls back by itself; per its retry table a
400 means "try your next candidate" (capacity carries no machine-readable code), 403 "skip this
candidate", 402 "stop", 422 "fix the request", 429 "back off by Retry-After", 5xx "retry the same
candidate". When no candidate places, ``GpusExhausted`` tells the workflow to use Replicate.

Readiness: RUNNING is not ready. ``runtime`` stays null until the container runs, and the pod is
ready when the agent itself answers (the ``wait_pod_ready`` activity checks that). ERROR is
unrecoverable: the provider reports the pod ``failed``.

Rate limits: the ``RateLimit`` header on every answer says what is left in each window; when a
window is spent the client waits for its reset before the next request, and a 429 waits for
its ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from loraflow.compute.base import PodState, PodStatus
from loraflow.compute.runpod_api import (
    Cloud,
    CreateGpuConfig,
    CreatePodRequest,
    ListPodsResponse,
    PodRuntime,
    Problem,
    parse_rate_limit,
)
from loraflow.compute.runpod_api import Pod as ApiPod
from loraflow.compute.runpod_api import PodStatus as ApiPodStatus
from loraflow.contracts.lora_training import PodHandle
from loraflow.contracts.names import POD_NAME_PREFIX
from loraflow.errors import GpusExhausted, ProviderError
from loraflow.logging import get_logger

__all__ = ["AGENT_PORT", "GpusExhausted", "RunPodConfig", "RunPodProvider"]

log = get_logger(__name__)

AGENT_PORT = 8080
_STATUS = {
    ApiPodStatus.PROVISIONING: PodStatus.starting,
    ApiPodStatus.STARTING: PodStatus.starting,
    ApiPodStatus.RUNNING: PodStatus.running,
    ApiPodStatus.EXITED: PodStatus.exited,
    ApiPodStatus.ERROR: PodStatus.failed,
    ApiPodStatus.TERMINATED: PodStatus.terminated,
}


@dataclass
class RunPodConfig:
    api_key: str
    image: str
    token_secret: str
    base_url: str = "https://api.runpod.io"
    gpu_types: list[str] = field(
        default_factory=lambda: ["NVIDIA L40S", "NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"]
    )
    cloud: Cloud = Cloud.SECURE
    #: The trainer image's CUDA build (training_scripts/Dockerfile): hosts below it cannot run it.
    min_cuda_version: str = "12.6"
    disk_gb: int = 60
    base_model: str = "/models/sdxl-base"  # inside the image (baked in; see training_scripts/Dockerfile)
    proxy_url: str = "https://{pod_id}-{port}.proxy.runpod.net"
    #: The pod agent's dead-man switch: it removes its own pod after this long without a request
    #: from the workflow, and in any case this long after creation.
    agent_idle_s: float = 900.0
    max_pod_s: float = 3 * 3600.0
    max_attempts: int = 6
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0


class RunPodProvider:
    name = "runpod"

    def __init__(
        self,
        config: RunPodConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cfg = config
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            base_url=config.base_url,
            headers={"Authorization": f"Bearer {config.api_key}"},
            timeout=config.timeout_s,
        )
        self._prices: dict[str, float] = {}
        self._lock = threading.Lock()
        self._not_before = 0.0  # a spent RateLimit window: no request before this time

    # -- interface ----------------------------------------------------------------------

    def create(self, name: str) -> PodState:
        found = self._find(name)
        if found is not None:
            return found
        refused: list[str] = []
        for gpu_type in self._cfg.gpu_types:
            body = self._create_body(name, gpu_type)
            try:
                r = self._request("POST", "/v2/pods", json=body, idempotent=False)
            except _LostResponse:
                # RunPod may have made the pod before the connection broke: look before retrying.
                found = self._find(name)
                if found is not None:
                    return found
                raise ProviderError(f"creating pod {name}: no answer from RunPod") from None
            if r.status_code == 201:
                pod = self._pod(r.json())
                log.info("runpod_pod_created", pod_id=pod.handle.pod_id, name=name, gpu_type=gpu_type)
                return pod
            problem = _problem_text(r)
            if r.status_code in (400, 403):
                # 400: capacity, or a rule this candidate breaks; 403: a pool we cannot use.
                log.warning("runpod_candidate_refused", gpu_type=gpu_type, name=name, status=r.status_code,
                            detail=problem)  # fmt: skip
                refused.append(f"{gpu_type} ({r.status_code} {problem})")
                continue
            if r.status_code == 402:
                raise ProviderError(f"RunPod refused to create {name}: the account's balance is too low "
                                    f"({problem})", retryable=False)  # fmt: skip
            raise ProviderError(
                f"RunPod refused to create {name}: {r.status_code} {problem}", retryable=False
            )
        log.error("runpod_no_candidate_placed", name=name, refused=refused)
        raise GpusExhausted(f"RunPod could not place a pod on any GPU type: {'; '.join(refused)}")

    def describe(self, pod_id: str) -> PodState:
        r = self._request("GET", f"/v2/pods/{pod_id}")
        if r.status_code == 404:
            gone = PodHandle(self.name, pod_id, "", None, "", self._prices.get(pod_id, 0.0), 0.0)
            return PodState(gone, PodStatus.terminated)
        _raise_for(r, f"describing pod {pod_id}")
        return self._pod(r.json())

    def terminate(self, pod_id: str) -> None:
        r = self._request("DELETE", f"/v2/pods/{pod_id}")
        if r.status_code not in (204, 404):
            _raise_for(r, f"terminating pod {pod_id}")

    def list_pods(self) -> list[PodState]:
        return [
            p
            for p in self._all_pods()
            if p.handle.name.startswith(POD_NAME_PREFIX) and p.status != PodStatus.terminated
        ]

    def price_per_hour(self) -> float:
        return max(self._prices.values(), default=0.0)

    def token_for(self, name: str) -> str:
        return hmac.new(self._cfg.token_secret.encode(), name.encode(), hashlib.sha256).hexdigest()

    # -- internals ----------------------------------------------------------------------

    def _create_body(self, name: str, gpu_type: str) -> dict[str, Any]:
        request = CreatePodRequest(
            name=name,
            image=self._cfg.image,
            gpu=CreateGpuConfig(id=gpu_type, count=1, minCudaVersion=self._cfg.min_cuda_version),
            cloud=self._cfg.cloud,
            disk=self._cfg.disk_gb,
            ports=[f"{AGENT_PORT}/http"],
            env={
                "LORAFLOW_AGENT_TOKEN": self.token_for(name),
                "LORAFLOW_BASE_MODEL": self._cfg.base_model,
                "LORAFLOW_AGENT_PORT": str(AGENT_PORT),
                "LORAFLOW_AGENT_IDLE_S": str(int(self._cfg.agent_idle_s)),
                "LORAFLOW_AGENT_DEADLINE": str(int(self._clock() + self._cfg.max_pod_s)),
            },
        )
        return request.model_dump(mode="json", exclude_none=True)

    def _all_pods(self) -> list[PodState]:
        r = self._request("GET", "/v2/pods")
        _raise_for(r, "listing pods")
        try:
            listed = ListPodsResponse.model_validate(r.json())
        except (ValidationError, ValueError) as exc:
            raise ProviderError(f"RunPod's pod list does not match its API document: {exc}") from exc
        return [self._from_api(p) for p in listed.pods]

    def _find(self, name: str) -> PodState | None:
        for pod in self._all_pods():
            if pod.handle.name == name and pod.status != PodStatus.terminated:
                return pod
        return None

    def _pod(self, data: Any) -> PodState:
        try:
            return self._from_api(ApiPod.model_validate(data))
        except ValidationError as exc:
            raise ProviderError(f"RunPod's pod does not match its API document: {exc}") from exc

    def _from_api(self, pod: ApiPod) -> PodState:
        # ``cost`` drops to 0.0 once a pod is EXITED or TERMINATED: keep the price it ran at.
        price = max(pod.cost, self._prices.get(pod.id, 0.0))
        self._prices[pod.id] = price
        status = _STATUS[pod.status]
        handle = PodHandle(
            provider=self.name,
            pod_id=pod.id,
            name=pod.name,
            endpoint=self._endpoint(pod.id, pod.runtime) if status == PodStatus.running else None,
            token=self.token_for(pod.name),
            price_per_hour=price,
            created_at=pod.createdAt.timestamp(),
        )
        return PodState(handle, status)

    def _endpoint(self, pod_id: str, runtime: PodRuntime | None) -> str | None:
        if runtime is None:  # null until the container runs: not reachable yet
            return None
        for port in runtime.ports:
            if port.private == AGENT_PORT and port.type == "tcp" and port.ip and port.public:
                return f"http://{port.ip}:{port.public}"  # a directly published TCP port
        # An HTTP port is reached through RunPod's proxy (it cuts requests at 100 s).
        return self._cfg.proxy_url.format(pod_id=pod_id, port=AGENT_PORT)

    def _request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """429 and 5xx are retried with backoff that honours Retry-After; transport errors too,
        except for a POST whose outcome is unknown (``_LostResponse``: the caller looks first).
        A spent ``RateLimit`` window delays the next request until it resets."""
        delay = 1.0
        for attempt in range(1, self._cfg.max_attempts + 1):
            self._respect_rate_limit()
            try:
                r = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if not idempotent:
                    raise _LostResponse(str(exc)) from exc
                if attempt == self._cfg.max_attempts:
                    raise ProviderError(f"RunPod unreachable: {exc}") from exc
                self._sleep(_jitter(delay))
                delay = min(delay * 2, self._cfg.max_backoff_s)
                continue
            self._note_rate_limit(r)
            if r.status_code != 429 and r.status_code < 500:
                return r
            if attempt == self._cfg.max_attempts:
                raise ProviderError(f"RunPod answered {r.status_code} {attempt} times: {_problem_text(r)}")
            wait = _retry_after(r) if r.status_code == 429 else None
            wait = _jitter(delay) if wait is None else wait
            log.warning("runpod_retry", status=r.status_code, wait_s=round(wait, 2), attempt=attempt)
            self._sleep(min(wait, self._cfg.max_backoff_s * 4))
            delay = min(delay * 2, self._cfg.max_backoff_s)
        raise AssertionError("unreachable")

    def _note_rate_limit(self, r: httpx.Response) -> None:
        spent = [w for w in parse_rate_limit(r.headers.get("ratelimit")) if w.remaining <= 0]
        if spent:
            wait = max(w.reset_s for w in spent)
            with self._lock:
                self._not_before = max(self._not_before, self._clock() + wait)
            log.info("runpod_rate_limit_spent", windows=[w.name for w in spent], wait_s=wait)

    def _respect_rate_limit(self) -> None:
        with self._lock:
            wait = self._not_before - self._clock()
        if wait > 0:
            self._sleep(min(wait, self._cfg.max_backoff_s * 4))


class _LostResponse(Exception):
    pass


def _problem_text(r: httpx.Response) -> str:
    """The problem+json of an error answer (``#/components/schemas/ErrorResponse``), as text."""
    try:
        return Problem.model_validate(r.json()).text()[:500]
    except (ValueError, ValidationError):
        return r.text[:300]


def _raise_for(r: httpx.Response, doing: str) -> None:
    if r.status_code >= 400:
        raise ProviderError(
            f"{doing}: RunPod answered {r.status_code} {_problem_text(r)}", retryable=r.status_code >= 500
        )


def _retry_after(r: httpx.Response) -> float | None:
    """``Retry-After`` is an integer number of seconds on RunPod's 429
    (``#/components/responses/TooManyRequestsError/headers/Retry-After``)."""
    try:
        return max(0.0, float(r.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _jitter(delay: float) -> float:
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - backoff jitter, not security
