"""What the video-job orchestrator and loraflow pass each other. Plain dataclasses (sandbox-safe:
the orchestrator's workflows import them), plus the pure rules for grouping and datasets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loraflow.contracts.limits import (
    MAX_IMAGES,
    MAX_TRAINING_S,
    PENDING_IMAGES_WAIT_S,
    TRAINING_COST_CAP_USD,
    UPLOADS_ALONE,
)
from loraflow.contracts.status import TrainingStatus


@dataclass
class ReferenceImage:
    """One image of the Reference Generator's ``ReferenceImages.character_references``."""

    character_id: str
    image_url: str


@dataclass
class JobLoraRequest:
    job_id: str
    user_id: str
    lora_name: str
    notify_workflow_id: str | None = None  # gets `lora_characters` and `lora_finished` signals
    params: dict[str, Any] = field(default_factory=dict)
    image_wait_s: float = PENDING_IMAGES_WAIT_S


@dataclass
class CharacterLora:
    character_id: str | None
    lora_id: str
    name: str


@dataclass
class JobDataset:
    keys: list[str]  # storage keys of the images to train on
    params: dict[str, Any]  # the resolved training parameters recorded on the LoRA
    cost_cap_usd: float = TRAINING_COST_CAP_USD  # the worker's settings, for the child TrainLoraWorkflow
    max_training_s: float = MAX_TRAINING_S
    replicate_fallback: bool = False
    validation_steps: int = 25


@dataclass
class SkippedCharacter:
    character_id: str
    images: int
    reason: str


@dataclass
class JobLoraReport:
    """Sent to the orchestrator (signal ``lora_characters``) once the references are grouped."""

    job_id: str
    trained: list[CharacterLora] = field(default_factory=list)
    skipped: list[SkippedCharacter] = field(default_factory=list)


@dataclass
class LoraFinished:
    """Sent to the orchestrator (signal ``lora_finished``) when a LoRA completes or fails."""

    lora_id: str
    status: TrainingStatus  # completed | failed
    error: str | None = None
    character_id: str | None = None
    job_id: str | None = None
    storage_url: str | None = None


@dataclass
class JobLoraStatus:
    lora_id: str
    name: str
    character_id: str | None
    status: TrainingStatus
    progress: int
    error: str | None
    ready: bool  # completed and validated: usable for this job's clips


# -- activity inputs (each activity takes one; a field added later needs a default) ----------


@dataclass
class CreateJobLoraInput:
    """create_job_lora: the job's pending LoRA for ``slot`` ("primary", or a character id)."""

    job_id: str
    user_id: str
    name: str
    slot: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FetchReferencesInput:
    user_id: str
    lora_id: str
    character_id: str
    urls: list[str]


@dataclass
class JobLoraStatusRequest:
    """``job_lora_status``'s input: public (the orchestrator runs it through
    ``loraflow.client.job_lora_status``)."""

    job_id: str


def group_references(references: list[ReferenceImage]) -> list[tuple[str, list[str]]]:
    """Image URLs per character, characters in order of first appearance, duplicates dropped."""
    groups: dict[str, list[str]] = {}
    for ref in references:
        urls = groups.setdefault(ref.character_id, [])
        if ref.image_url not in urls:
            urls.append(ref.image_url)
    return list(groups.items())


def compose_dataset(uploaded: list[str], generated: list[str]) -> list[str]:
    """The spec's Phase 2 rule: 5+ uploads train alone; 3-4 uploads get 1-2 generated images
    (to 5 in all); none, the generated images alone. 1-2 uploads (the spec is silent) are
    likewise topped up with generated images to 5. At most 10 images."""
    if len(uploaded) >= UPLOADS_ALONE:
        return uploaded[:MAX_IMAGES]
    if uploaded:
        return uploaded + generated[: UPLOADS_ALONE - len(uploaded)]
    return generated[:MAX_IMAGES]


def character_lora_name(lora_name: str, character_id: str, index: int) -> str:
    """The first character takes the name the user gave; the others derive from it."""
    if index == 0:
        return lora_name
    suffix = f" ({character_id})"
    return lora_name[: 255 - len(suffix)] + suffix
