"""What the training workflow and its activities pass each other: plain dataclasses only, so the
workflow sandbox can import this module (no I/O, no torch, no psycopg)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainLoraInput:
    lora_id: str
    user_id: str | None
    image_keys: list[str]  # storage keys of the uploaded character images
    params: dict[str, Any]  # train_lora.TrainConfig options (steps, rank, ...)
    base_model_family: str = "sdxl"
    #: With fewer than MIN_IMAGES keys the workflow waits this long for an ``add_images`` signal.
    image_wait_s: float = 86400.0
    #: A workflow (the video-job orchestrator's) signalled ``lora_finished`` with the outcome.
    notify_workflow_id: str | None = None
    character_id: str | None = None  # set for a job's LoRAs: the character it is of
    cost_cap_usd: float = 5.0  # a running training is stopped when its pod cost reaches this
    max_training_s: float = 3 * 3600.0  # ... or when its pod has run this long
    replicate_fallback: bool = False  # when the pod provider has no GPU, train on Replicate
    job_id: str | None = None


@dataclass
class PodRef:
    provider: str
    pod_id: str
    name: str
    endpoint: str
    token: str
    price_per_hour: float
    created_at: float


@dataclass
class AgentProgress:
    state: str = "idle"  # idle | training | succeeded | failed
    version: int = -1
    phase: str | None = None
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    error: str | None = None
    sha256: str | None = None
    size: int | None = None


@dataclass
class TrainingProgress:
    """The live state a query returns and the Web UI shows."""

    status: str = "pending"  # lora_models.training_status
    phase: str = "pending"  # finer: preparing, creating_pod, uploading, training, downloading, ...
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    progress: int = 0  # 0-100
    pod_id: str | None = None
    error: str | None = None


@dataclass
class StagedArtifact:
    key: str
    size: int
    sha256: str


@dataclass
class StoredLora:
    key: str
    url: str
    size: int
    sha256: str


@dataclass
class ValidationRequest:
    lora_id: str
    index: int
    prompt: str
    seed: int
    lora_key: str
    reference_keys: list[str]


@dataclass
class ValidationScore:
    index: int
    prompt: str
    image_key: str
    image_url: str
    lora_similarity: float
    base_similarity: float
    shows_character: bool


@dataclass
class TrainingOutcome:
    lora_id: str
    status: str  # completed | failed
    error: str | None = None
    stored: StoredLora | None = None
    scores: list[ValidationScore] = field(default_factory=list)
    cost_usd: float = 0.0
    pod_seconds: float = 0.0
