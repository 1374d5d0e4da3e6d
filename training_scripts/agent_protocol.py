"""The wire protocol between loraflow's workflow (its activities) and the pod agent: the one
definition both sides import. Standard library only, so the trainer image needs nothing more
and the Temporal workflow sandbox can import it.

    PUT  /images/{name}      a training image (``IMAGE_NAME``; at most ``MAX_IMAGE_BYTES``;
                             ``X-Sha256`` optional); the same bytes again is a no-op
    POST /train              a ``TrainRequest``; the same ``run_id`` again is a no-op
    GET  /progress           a ``Progress``; ``?after=VERSION&wait_s=N&terminal_only=true``
                             long-polls until something newer than VERSION (or the end)
    GET  /artifact           the finished .safetensors, streamed, with ``X-Sha256``;
                             ``?checkpoint=NAME`` one of ``Progress.checkpoints`` instead
    POST /generate           a ``GenerateRequest``: validation images from the base model and
                             each named checkpoint, same prompt and seed, on the pod's GPU;
                             ``?wait_s=N`` answers once done (or after N s) with a
                             ``Generation``; the same ``request_id`` again joins the same work
    GET  /generated/{request_id}/{file}   one generated PNG of a finished ``Generation``
    GET  /healthz            readiness (authenticated)
    GET  /livez              liveness (no token; not contact for the dead-man switch)

Every request but ``/livez`` carries ``Authorization: Bearer <token>`` (``TOKEN_ENV``).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ARTIFACT_PATH",
    "BASE_IMAGES",
    "DEADLINE_ENV",
    "FINAL_CHECKPOINT",
    "GENERATE_PATH",
    "HEALTHZ_PATH",
    "IDLE_ENV",
    "IMAGE_NAME",
    "LIVEZ_PATH",
    "LOG_PATH",
    "LOG_TAIL_BYTES",
    "MAX_IMAGE_BYTES",
    "PROGRESS_PATH",
    "SHA256_HEADER",
    "TOKEN_ENV",
    "TRAIN_PATH",
    "AgentState",
    "Checkpoint",
    "GenerateRequest",
    "GeneratedImage",
    "Generation",
    "GenerationState",
    "Progress",
    "TrainRequest",
    "checkpoints_of",
    "generated_path",
    "generation_from_json",
    "image_path",
    "progress_from_json",
]

TOKEN_ENV = "LORAFLOW_AGENT_TOKEN"  # noqa: S105 - the variable's name, not a secret
#: The dead-man switch: idle seconds before the pod removes itself, and its hard deadline.
IDLE_ENV = "LORAFLOW_AGENT_IDLE_S"
DEADLINE_ENV = "LORAFLOW_AGENT_DEADLINE"

TRAIN_PATH = "/train"
PROGRESS_PATH = "/progress"
ARTIFACT_PATH = "/artifact"
#: The trainer's log (its stderr), the last LOG_TAIL_BYTES of it: what a failure's reason leaves out.
LOG_PATH = "/log"
LOG_TAIL_BYTES = 4 << 20
HEALTHZ_PATH = "/healthz"
LIVEZ_PATH = "/livez"
SHA256_HEADER = "X-Sha256"
IMAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(png|jpg|jpeg|webp|txt)$")
MAX_IMAGE_BYTES = 30 * 1024 * 1024
MAX_RUN_ID = 200
GENERATE_PATH = "/generate"
#: The checkpoint name of the finished LoRA (``/artifact`` with no ``checkpoint``).
FINAL_CHECKPOINT = "final"
#: What a ``GeneratedImage`` made without any LoRA is called: the control.
BASE_IMAGES = "base"
REQUEST_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
MAX_PROMPT = 1000
MAX_GENERATION_STEPS = 100


def image_path(name: str) -> str:
    return f"/images/{name}"


def generated_path(request_id: str, file: str) -> str:
    return f"/generated/{request_id}/{file}"


class AgentState(enum.StrEnum):
    IDLE = "idle"
    TRAINING = "training"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (AgentState.SUCCEEDED, AgentState.FAILED)


@dataclass
class TrainRequest:
    """What to train; the agent adds the paths. ``params`` keys are train_lora.TrainConfig's."""

    #: The same run_id again is the same training (a retried request).
    run_id: str
    params: dict[str, Any] = field(default_factory=dict)

    # Read by pydantic where the agent validates a request body (FastAPI): unknown keys refused.
    __pydantic_config__ = {"extra": "forbid"}

    def problem(self) -> str | None:
        if not 1 <= len(self.run_id) <= MAX_RUN_ID:
            return f"run_id must be 1-{MAX_RUN_ID} characters"
        return None


@dataclass
class Progress:
    """The training as the agent sees it. ``version`` grows with every change (long polls)."""

    state: str = AgentState.IDLE
    version: int = 0
    run_id: str | None = None
    phase: str | None = None
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    seconds_per_step: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    sha256: str | None = None
    size: int | None = None
    #: Every LoRA saved so far, as ``Checkpoint`` dicts, oldest first; the last is the artifact
    #: (``FINAL_CHECKPOINT``) once training succeeded.
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def percent(self) -> int:
        return min(100, int(100 * self.step / self.total_steps)) if self.total_steps else 0


_FIELDS = frozenset(f.name for f in dataclasses.fields(Progress))


def progress_from_json(data: dict[str, Any]) -> Progress:
    """A ``Progress`` from its JSON, ignoring fields a newer agent may have added."""
    return Progress(**{k: v for k, v in data.items() if k in _FIELDS})


@dataclass(frozen=True)
class Checkpoint:
    """A LoRA the trainer saved: at ``step``, downloadable as ``/artifact?checkpoint=name``."""

    name: str
    step: int
    sha256: str
    size: int


def checkpoints_of(progress: Progress) -> list[Checkpoint]:
    return [Checkpoint(**{k: c[k] for k in ("name", "step", "sha256", "size")}) for c in progress.checkpoints]


class GenerationState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (GenerationState.SUCCEEDED, GenerationState.FAILED)


@dataclass
class GenerateRequest:
    """One validation prompt: the base model's image and each checkpoint's, all with ``seed``.
    Requests that arrive together are generated together (batched on the GPU)."""

    request_id: str
    prompt: str
    seed: int
    checkpoints: list[str]  # names from ``Progress.checkpoints``
    steps: int = 20

    __pydantic_config__ = {"extra": "forbid"}

    def problem(self) -> str | None:
        if not REQUEST_ID.match(self.request_id):
            return "request_id must be 1-200 characters of [A-Za-z0-9_.-]"
        if not 1 <= len(self.prompt) <= MAX_PROMPT:
            return f"prompt must be 1-{MAX_PROMPT} characters"
        if not 0 <= self.seed < 2**32:
            return "seed must be in [0, 2**32)"
        if not self.checkpoints or len(set(self.checkpoints)) != len(self.checkpoints):
            return "checkpoints must name at least one checkpoint, each once"
        if not 1 <= self.steps <= MAX_GENERATION_STEPS:
            return f"steps must be 1-{MAX_GENERATION_STEPS}"
        return None


@dataclass
class GeneratedImage:
    checkpoint: str  # a checkpoint's name, or BASE_IMAGES for the control
    file: str  # ``GET generated_path(request_id, file)``
    sha256: str


@dataclass
class Generation:
    request_id: str
    state: str = GenerationState.QUEUED
    images: list[dict[str, Any]] = field(default_factory=list)  # ``GeneratedImage`` dicts
    error: str | None = None
    seconds: float | None = None  # generation time of the batch it ran in

    def generated(self) -> list[GeneratedImage]:
        return [GeneratedImage(**i) for i in self.images]


_GENERATION_FIELDS = frozenset(f.name for f in dataclasses.fields(Generation))


def generation_from_json(data: dict[str, Any]) -> Generation:
    return Generation(**{k: v for k, v in data.items() if k in _GENERATION_FIELDS})
