"""The part of RunPod's REST API v2 that loraflow uses, as typed models.

Written from RunPod's published OpenAPI document (``runpod-rest-v2-openapi.json``, "Runpod REST
API 2.0.0", served at ``https://api.runpod.io/v2/openapi.json``); each model cites the JSON
pointer it was taken from. The client (``loraflow.compute.runpod``) builds its requests with
these models and reads the answers through them; the test fake (``tests/fakes/runpod.py``)
validates every request against them, so both sides follow the vendor's document rather than
our reading of it.

Where the vendor's schema forbids unknown properties (``unevaluatedProperties: false`` or
``additionalProperties: false``), the model forbids them too; responses accept fields we do not
know yet (the document may grow).
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "Cloud",
    "CreateGpuConfig",
    "CreatePodRequest",
    "ListPodsResponse",
    "Pod",
    "PodRuntime",
    "PodRuntimePort",
    "PodStatus",
    "Problem",
    "RateLimitWindow",
    "parse_rate_limit",
]

#: ``major.minor``, as ``#/components/schemas/CreateGpuConfig`` (allOf[1]) requires of CUDA versions.
CudaVersion = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class PodStatus(enum.StrEnum):
    """``#/components/schemas/PodStatus``. RUNNING means the container is healthy, not that our
    agent answers; ERROR is unrecoverable; TERMINATED is gone for good."""

    PROVISIONING = "PROVISIONING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    ERROR = "ERROR"
    TERMINATED = "TERMINATED"


class Cloud(enum.StrEnum):
    """``#/components/schemas/Cloud``."""

    SECURE = "SECURE"
    COMMUNITY = "COMMUNITY"


class CreateGpuConfig(_Request):
    """``#/components/schemas/CreateGpuConfig``: ``GpuConfig`` (``id`` required, ``count`` ≥ 1)
    plus the host's CUDA constraints; ``unevaluatedProperties: false``."""

    id: str
    count: int = Field(default=1, ge=1)
    allowedCudaVersions: list[CudaVersion] | None = None  # camelCase: the vendor's names
    minCudaVersion: CudaVersion | None = None

    @model_validator(mode="after")
    def _one_cuda_constraint(self) -> CreateGpuConfig:
        # The description of both fields: a non-empty set and a floor together are a 400.
        if self.allowedCudaVersions and self.minCudaVersion:
            raise ValueError("allowedCudaVersions (non-empty) and minCudaVersion are mutually exclusive")
        return self


class CreatePodRequest(_Request):
    """``#/components/schemas/CreatePodRequest``: ``ContainerConfig`` (``BaseContainerConfig``
    + ``registry``) and the pod's own fields, ``unevaluatedProperties: false``; ``image`` is
    required unless ``templateId`` is set (its ``if``/``then``). Exactly one of ``gpu``/``cpu``
    is a handler rule (a 400), checked by ``handler_rule_violation``."""

    name: str = Field(min_length=1)
    image: str | None = None
    args: str | None = None
    disk: int | None = Field(default=None, ge=1)
    env: dict[str, str] | None = None
    ports: list[str] | None = None
    registry: str | None = None
    cloud: Cloud | None = None  # RunPod's default is SECURE
    cpu: dict[str, object] | None = None  # CreateCpuConfig: loraflow never asks for CPU pods
    dataCenterIds: list[str] | None = None
    globalNetworking: bool | None = None
    gpu: CreateGpuConfig | None = None
    mounts: dict[str, object] | None = None
    startJupyter: bool | None = None
    startSsh: bool | None = None
    templateId: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _image_unless_template(self) -> CreatePodRequest:
        if self.templateId is None and self.image is None:
            raise ValueError("image is required unless templateId is set")
        return self

    def handler_rule_violation(self) -> str | None:
        """The cross-field rule the document leaves to the handler (``createPod``'s description:
        "supply exactly one of gpu or cpu"), answered with a 400 rather than a 422."""
        if (self.gpu is None) == (self.cpu is None):
            return "exactly one of gpu or cpu must be set"
        return None


class PodRuntimePort(_Response):
    """``#/components/schemas/PodRuntimePort``: a live port mapping."""

    private: int | None = None
    public: int | None = None
    type: str | None = None
    ip: str | None = None


class PodRuntime(_Response):
    """``#/components/schemas/PodRuntime``; the pod's ``runtime`` is null until it runs."""

    uptime: int | None = None
    ports: list[PodRuntimePort] = Field(default_factory=list)


class GpuConfig(_Response):
    """``#/components/schemas/GpuConfig`` as a pod reports it."""

    id: str
    count: int = 1


class Pod(_Response):
    """``#/components/schemas/Pod``, with the fields its ``required`` list names that loraflow
    reads. ``cost`` is USD per hour now (0.0 once EXITED or TERMINATED)."""

    id: str
    name: str
    status: PodStatus
    image: str
    env: dict[str, str] = Field(default_factory=dict)
    ports: list[str] = Field(default_factory=list)
    cost: float
    gpu: GpuConfig | None = None
    cudaVersion: str | None = None
    runtime: PodRuntime | None
    createdAt: datetime
    startedAt: datetime | None = None


class ListPodsResponse(_Response):
    """``#/components/schemas/ListPodsResponse``: ``{"pods": [...]}``. ``listPods`` takes only
    ``includeClusterPods``; unknown query parameters are ignored, so it cannot filter by name."""

    pods: list[Pod]


class Problem(_Response):
    """``#/components/schemas/ErrorResponse``: RFC 9457 problem+json, on every error."""

    title: str
    status: int
    detail: str
    errors: list[str] | None = None

    def text(self) -> str:
        extra = f" ({'; '.join(self.errors)})" if self.errors else ""
        return f"{self.title}: {self.detail}{extra}"


class RateLimitWindow(BaseModel):
    """One member of the ``RateLimit`` header (``#/components/schemas/RateLimitHeader``):
    ``"minute";r=0;t=12`` — ``r`` requests remain, the window resets in ``t`` seconds."""

    name: str
    remaining: int
    reset_s: int


_MEMBER = re.compile(r'^\s*"?(?P<name>[A-Za-z0-9_-]+)"?\s*(?P<params>(;[^,]*)*)$')


def parse_rate_limit(value: str | None) -> list[RateLimitWindow]:
    """The windows of a ``RateLimit`` header (a structured-field list); [] when absent or
    unreadable (the header is optional: rate-limit-exempt callers get none)."""
    windows = []
    for member in (value or "").split(","):
        match = _MEMBER.match(member)
        if not match:
            continue
        params = dict(p.strip().split("=", 1) for p in match.group("params").split(";") if "=" in p)
        try:
            windows.append(
                RateLimitWindow(
                    name=match.group("name"), remaining=int(params["r"]), reset_s=int(params["t"])
                )
            )
        except (KeyError, ValueError):
            continue
    return windows
