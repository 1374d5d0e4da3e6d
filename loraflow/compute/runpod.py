"""RunPod: training pods on rented GPUs, through RunPod's REST API v2 (``/v2/pods``) with httpx.

Why not the ``runpod`` SDK: its pod functions are GraphQL mutations built by string
interpolation (env values land inside the query text: a quote in a value breaks the query, and
a crafted one changes it), and RunPod retires REST v1 in late 2026 and GraphQL in early 2027.
REST v2 takes JSON bodies, so nothing is interpolated, and it is the API that stays.

Idempotent create: the pod's name derives from the workflow id; before creating, the provider
lists pods with that name and returns the one it finds. A create whose response was lost (a
timeout after RunPod made the pod) is followed by that same lookup, never by a blind POST.
The agent's token is derived from the name with a secret (HMAC), so a worker that restarts
after a crash knows the token of a pod it finds again without storing it anywhere.

Readiness: RUNNING is not ready. ``runtime`` stays null until the image is pulled and the
container started; the endpoint is known only then, and the pod is ready when the agent itself
answers (the ``wait_pod_ready`` activity checks that).
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from loraflow.compute.base import Pod, PodStatus, ProviderError
from loraflow.logging import get_logger

log = get_logger(__name__)

AGENT_PORT = 8080
NAME_PREFIX = "lf-"
_NO_INSTANCES = ("no instances available", "no longer any instances available", "out of capacity")
_STATUS = {
    "PROVISIONING": PodStatus.starting,
    "STARTING": PodStatus.starting,
    "CREATED": PodStatus.starting,
    "RUNNING": PodStatus.running,
    "EXITED": PodStatus.exited,
    "STOPPED": PodStatus.exited,
    "TERMINATED": PodStatus.terminated,
}


class GpusExhausted(ProviderError):
    """No GPU type on the fallback list had an instance: time for the next provider."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass
class RunPodConfig:
    api_key: str
    image: str
    token_secret: str
    base_url: str = "https://api.runpod.io"
    gpu_types: list[str] = field(
        default_factory=lambda: ["NVIDIA L40S", "NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"]
    )
    cloud_type: str = "SECURE"
    disk_gb: int = 60
    base_model: str = "/models/sdxl-base"  # inside the image (baked in; see training_scripts/Dockerfile)
    proxy_url: str = "https://{pod_id}-{port}.proxy.runpod.net"
    max_attempts: int = 6
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0


class RunPodProvider:
    name = "runpod"

    def __init__(self, config: RunPodConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._cfg = config
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=config.base_url,
            headers={"Authorization": f"Bearer {config.api_key}"},
            timeout=config.timeout_s,
        )
        self._prices: dict[str, float] = {}

    # -- interface ----------------------------------------------------------------------

    def create(self, name: str) -> Pod:
        found = self._find(name)
        if found is not None:
            return found
        tried = []
        for gpu_type in self._cfg.gpu_types:
            body = {
                "name": name,
                "image": self._cfg.image,
                "gpu": {"typeId": gpu_type, "count": 1, "cloudType": self._cfg.cloud_type},
                "disk": self._cfg.disk_gb,
                "ports": [f"{AGENT_PORT}/http"],
                "env": {
                    "LORAFLOW_AGENT_TOKEN": self.token_for(name),
                    "LORAFLOW_BASE_MODEL": self._cfg.base_model,
                    "LORAFLOW_AGENT_PORT": str(AGENT_PORT),
                },
            }
            try:
                r = self._request("POST", "/v2/pods", json=body, idempotent=False)
            except _LostResponse:
                # RunPod may have made the pod before the connection broke: look before retrying.
                found = self._find(name)
                if found is not None:
                    return found
                raise ProviderError(f"creating pod {name}: no answer from RunPod") from None
            if r.status_code in (200, 201):
                pod = self._pod(r.json())
                log.info("runpod_pod_created", pod_id=pod.pod_id, name=name, gpu_type=gpu_type)
                return pod
            message = _error_text(r)
            if any(marker in message.lower() for marker in _NO_INSTANCES):
                log.warning("runpod_no_instances", gpu_type=gpu_type, name=name)
                tried.append(gpu_type)
                continue
            raise ProviderError(
                f"RunPod refused to create {name}: {r.status_code} {message}", retryable=False
            )
        raise GpusExhausted(f"RunPod has no instances of {', '.join(tried)}")

    def describe(self, pod_id: str) -> Pod:
        r = self._request("GET", f"/v2/pods/{pod_id}")
        if r.status_code == 404:
            return Pod(
                self.name, pod_id, "", PodStatus.terminated, None, "", self._prices.get(pod_id, 0.0), 0.0
            )
        _raise_for(r, f"describing pod {pod_id}")
        return self._pod(r.json())

    def terminate(self, pod_id: str) -> None:
        r = self._request("DELETE", f"/v2/pods/{pod_id}")
        if r.status_code not in (200, 202, 204, 404):
            _raise_for(r, f"terminating pod {pod_id}")

    def list_pods(self) -> list[Pod]:
        r = self._request("GET", "/v2/pods")
        _raise_for(r, "listing pods")
        pods = [self._pod(p) for p in _items(r.json())]
        return [p for p in pods if p.name.startswith(NAME_PREFIX) and p.status != PodStatus.terminated]

    def price_per_hour(self) -> float:
        return max(self._prices.values(), default=0.0)

    def token_for(self, name: str) -> str:
        return hmac.new(self._cfg.token_secret.encode(), name.encode(), hashlib.sha256).hexdigest()

    # -- internals ----------------------------------------------------------------------

    def _find(self, name: str) -> Pod | None:
        r = self._request("GET", "/v2/pods", params={"name": name})
        _raise_for(r, f"looking for pod {name}")
        for item in _items(r.json()):
            pod = self._pod(item)
            if pod.name == name and pod.status != PodStatus.terminated:
                return pod
        return None

    def _pod(self, data: dict[str, Any]) -> Pod:
        pod_id = str(data["id"])
        price = float(data.get("costPerHr") or data.get("adjustedCostPerHr") or 0.0)
        self._prices[pod_id] = price
        status = _STATUS.get(
            str(data.get("status") or data.get("desiredStatus") or "").upper(), PodStatus.starting
        )
        return Pod(
            provider=self.name,
            pod_id=pod_id,
            name=str(data.get("name", "")),
            status=status,
            endpoint=self._endpoint(pod_id, data.get("runtime")),
            token=self.token_for(str(data.get("name", ""))),
            price_per_hour=price,
            created_at=_timestamp(data.get("createdAt")),
        )

    def _endpoint(self, pod_id: str, runtime: dict[str, Any] | None) -> str | None:
        if not runtime:  # null until the container runs: not reachable yet
            return None
        for port in runtime.get("ports") or []:
            if port.get("privatePort") == AGENT_PORT and port.get("isIpPublic") and port.get("publicPort"):
                return f"http://{port['ip']}:{port['publicPort']}"
        return self._cfg.proxy_url.format(pod_id=pod_id, port=AGENT_PORT)

    def _request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """429 and 5xx are retried with backoff that honours Retry-After; transport errors too,
        except for a POST whose outcome is unknown (``_LostResponse``: the caller looks first)."""
        delay = 1.0
        for attempt in range(1, self._cfg.max_attempts + 1):
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
            if r.status_code != 429 and r.status_code < 500:
                return r
            if attempt == self._cfg.max_attempts:
                raise ProviderError(f"RunPod answered {r.status_code} {attempt} times: {_error_text(r)}")
            wait = _retry_after(r) or _jitter(delay)
            log.warning("runpod_retry", status=r.status_code, wait_s=round(wait, 2), attempt=attempt)
            self._sleep(min(wait, self._cfg.max_backoff_s * 4))
            delay = min(delay * 2, self._cfg.max_backoff_s)
        raise AssertionError("unreachable")


class _LostResponse(Exception):
    pass


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    for key in ("pods", "data", "items"):
        if isinstance(body.get(key), list):
            return body[key]
    return []


def _error_text(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:300]
    return str(body)[:300]


def _raise_for(r: httpx.Response, doing: str) -> None:
    if r.status_code >= 400:
        raise ProviderError(
            f"{doing}: RunPod answered {r.status_code} {_error_text(r)}", retryable=r.status_code >= 500
        )


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _jitter(delay: float) -> float:
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - backoff jitter, not security


def _timestamp(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()
