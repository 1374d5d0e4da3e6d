"""The wire protocol between loraflow's workflow (its activities) and the pod agent: the one
definition both sides import. Standard library only, so the trainer image needs nothing more
and the Temporal workflow sandbox can import it.

    PUT  /images/{name}      a training image (``IMAGE_NAME``; at most ``MAX_IMAGE_BYTES``;
                             ``X-Sha256`` optional); the same bytes again is a no-op
    POST /train              a ``TrainRequest``; the same ``run_id`` again is a no-op
    GET  /progress           a ``Progress``; ``?after=VERSION&wait_s=N&terminal_only=true``
                             long-polls until something newer than VERSION (or the end)
    GET  /artifact           the finished .safetensors, streamed, with ``X-Sha256``
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
    "DEADLINE_ENV",
    "HEALTHZ_PATH",
    "IDLE_ENV",
    "IMAGE_NAME",
    "LIVEZ_PATH",
    "MAX_IMAGE_BYTES",
    "PROGRESS_PATH",
    "SHA256_HEADER",
    "TOKEN_ENV",
    "TRAIN_PATH",
    "AgentState",
    "Progress",
    "TrainRequest",
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
HEALTHZ_PATH = "/healthz"
LIVEZ_PATH = "/livez"
SHA256_HEADER = "X-Sha256"
IMAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(png|jpg|jpeg|webp|txt)$")
MAX_IMAGE_BYTES = 30 * 1024 * 1024
MAX_RUN_ID = 200


def image_path(name: str) -> str:
    return f"/images/{name}"


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

    @property
    def percent(self) -> int:
        return min(100, int(100 * self.step / self.total_steps)) if self.total_steps else 0


_FIELDS = frozenset(f.name for f in dataclasses.fields(Progress))


def progress_from_json(data: dict[str, Any]) -> Progress:
    """A ``Progress`` from its JSON, ignoring fields a newer agent may have added."""
    return Progress(**{k: v for k, v in data.items() if k in _FIELDS})
