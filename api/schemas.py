"""Request and response bodies of the HTTP API. Persistence shapes live in ``loraflow.db``; where
a domain type has a public shape here, the schema is named ``...Public`` (``BudgetStatusPublic``)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loraflow.contracts.status import TrainingStatus
from loraflow.db.moderation import Decision
from loraflow.db.reports import ReportReason
from loraflow.domain.params import TrainingParams


def _check_text(value: str, *, allow_newlines: bool) -> str:
    # PostgreSQL cannot store NUL, and lone surrogates cannot be encoded: reject them here
    # with a 400 rather than failing in the database.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    allowed = {"\n", "\t", "\r"} if allow_newlines else set()
    for ch in value:
        if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs"):
            raise ValueError("must not contain control characters")
    return value


#: Characters that show nothing: a name made only of these looks empty in the library. The same
#: set as the database's CHECK (sql/0015_invisible_names.sql).
_INVISIBLE = re.compile(
    "[\\s\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2000-\u200f"
    "\u2028-\u202f\u205f-\u206f\u2800\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)


def _clean_name(value: str) -> str:
    value = _check_text(value.strip(), allow_newlines=False)
    if not 1 <= len(value) <= 255:
        raise ValueError("must be 1-255 characters after trimming whitespace")
    if not _INVISIBLE.sub("", value):
        raise ValueError("must contain a visible character")
    return value


def _clean_description(value: str | None) -> str | None:
    if value is None:
        return None
    value = _check_text(value.strip(), allow_newlines=True)
    return value or None


def _clean_query(value: str) -> str:
    # Blank means "no filter"; it stays a string so length constraints still apply to it.
    return _check_text(value.strip(), allow_newlines=False)


LoraName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,  # generous before trimming; the 255 rule applies after
        description="What the user calls this character. 1-255 characters after trimming, "
        "no control characters, unique among the caller's LoRAs (other users may reuse it).",
        examples=["Cyberpunk Girl"],
    ),
    AfterValidator(_clean_name),
]
LoraDescription = Annotated[
    str | None,
    Field(default=None, max_length=2000, description="Optional free text shown in the library."),
    AfterValidator(_clean_description),
]


def _clean_reason(value: str) -> str:
    value = _check_text(value.strip(), allow_newlines=True)
    if not value:
        raise ValueError("must say why")
    return value


ModerationReason = Annotated[
    str,
    Field(max_length=1000, description="Why: kept in the audit log; on `hide`, shown to the creator."),
    AfterValidator(_clean_reason),
]
SearchText = Annotated[str, Field(max_length=200), AfterValidator(_clean_query)]


class CreateLoraRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LoraName
    description: LoraDescription = None
    training_params: TrainingParams | None = Field(
        default=None, description="Overrides of the training defaults, within bounds."
    )


class CreateLoraResponse(BaseModel):
    lora_id: uuid.UUID = Field(description="The new LoRA's id.")
    status: TrainingStatus = Field(description="Always `pending` for a new LoRA.")
    message: str = Field(description="What happens next.")


class Creator(BaseModel):
    id: uuid.UUID | None = Field(description="The creator's user id; null if the user was deleted.")
    email: str | None = Field(description="The creator's e-mail, to tell same-named LoRAs apart.")


class RatingPublic(BaseModel):
    mean: float | None = Field(description="Mean stars (1-5); null before the first rating.")
    count: int = Field(description="Ratings given.")


class RatingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stars: int = Field(ge=1, le=5, description="1 to 5 stars.")


class RatingResult(BaseModel):
    stars: int = Field(description="Your rating now.")
    rating: RatingPublic = Field(description="The LoRA's ratings, yours included.")


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ReportReason = Field(
        description="`sexual`, `minor`, `violence`, `hate`, `impersonation`, `copyright`, `spam` or `other`."
    )
    note: str | None = Field(default=None, max_length=1000, description="Optional details for the reviewer.")


class ReportCreated(BaseModel):
    id: int = Field(description="The report's id.")
    status: Literal["open"] = Field(description="Open until a moderator reviews it.")


class LoraSummary(BaseModel):
    id: uuid.UUID
    name: str = Field(description="User-given name (unique per creator).")
    description: str | None = Field(description="Optional description.")
    training_status: TrainingStatus = Field(description="Where the LoRA is in its life.")
    created_at: datetime
    created_by: Creator
    usage_count: int = Field(description="Clips generated with this LoRA.")
    uses_30d: int = Field(description="Clips generated with it in the last 30 days (`sort=trending`).")
    base_model: str = Field(description="Model family it was trained for, e.g. `sdxl`.")
    trigger_word: str | None = Field(description="Token that invokes the character in prompts.")
    validation_passed: bool = Field(description="Whether quality validation passed.")
    rating: RatingPublic = Field(description="Users' ratings (`sort=top_rated` ranks by their damped mean).")
    my_rating: int | None = Field(default=None, description="Your own rating of it, if any.")


class Pagination(BaseModel):
    total: int = Field(description="Matches in all, across pages.")
    limit: int = Field(description="Page size used.")
    offset: int = Field(description="Offset used.")


class LoraList(BaseModel):
    items: list[LoraSummary]
    pagination: Pagination


class TrainingParamsPublic(BaseModel):
    """The parameters a LoRA trains with, as far as a user chooses them (``TrainingParams``)."""

    steps: int | None = Field(default=None, description="Optimizer steps.")
    rank: int | None = Field(default=None, description="LoRA rank.")
    alpha: int | None = Field(default=None, description="LoRA alpha.")
    learning_rate: float | None = Field(default=None, description="Learning rate.")
    resolution: int | None = Field(default=None, description="Training resolution, px.")
    trigger_word: str | None = Field(default=None, description="Token that invokes the character.")
    seed: int | None = Field(default=None, description="Random seed.")


class ValidationImage(BaseModel):
    checkpoint: str = Field(
        description="The checkpoint it was made with (`base`: the base model, the control)."
    )
    step: int = Field(description="The training step of that checkpoint (0 for the control).")
    score: float | None = Field(description="The judge's likeness to the references (higher: more alike).")
    shows_character: bool = Field(description="Like the references beyond the judge's floor and the control.")
    image_url: str | None = Field(
        description="Signed URL (expires) for the kept checkpoint's images and the controls; null otherwise."
    )


class ValidationPrompt(BaseModel):
    index: int
    prompt: str
    seed: int
    control: ValidationImage = Field(description="The base model's image, same prompt and seed.")
    checkpoints: list[ValidationImage]


class CheckpointScore(BaseModel):
    name: str
    step: int
    likeness: float | None = Field(description="Mean score of its images.")
    shown: int = Field(description="Prompts whose image shows the character.")
    passed: bool


class ValidationResult(BaseModel):
    """How validation judged the LoRA: the judge, every checkpoint, the one kept."""

    judge: str = Field(
        description="`face` (face identity), `embedding` (CLIP/DINOv2) or `pixel` (tiny demo)."
    )
    chosen: str | None = Field(description="The checkpoint stored in the library; null if none passed.")
    chosen_step: int | None
    checkpoints: list[CheckpointScore]
    prompts: list[ValidationPrompt]
    error: str | None = Field(default=None, description="Why some validation images are missing.")


class LoraDetail(LoraSummary):
    storage_url: str | None = Field(description="URL of the .safetensors file once trained.")
    storage_path: str | None = Field(description="Path of the file in object storage.")
    file_size: int | None = Field(description="File size in bytes once trained.")
    sha256: str | None = Field(description="SHA-256 of the file once trained.")
    reference_image_urls: list[str] | None = Field(description="Images it was trained from.")
    validation_image_urls: list[str] | None = Field(description="Validation images (kept 30 days).")
    training_params: TrainingParamsPublic = Field(description="Training parameters used.")
    validation: ValidationResult | None = Field(
        default=None, description="Validation's judge, scores and chosen checkpoint, once validated."
    )
    hidden_reason: str | None = Field(
        default=None, description="Why it is hidden from the library (shown to its creator only)."
    )
    training_cost: float = Field(description="What training cost, in USD.")
    error_message: str | None = Field(description="Why training failed, when it did.")
    completed_at: datetime | None
    updated_at: datetime


class UploadResponse(BaseModel):
    lora_id: uuid.UUID
    images: int = Field(description="Images the LoRA has now.")
    training_started: bool = Field(description="Whether this request started the training.")
    status: TrainingStatus


class LoraStatus(BaseModel):
    id: uuid.UUID
    training_status: TrainingStatus
    phase: str | None = Field(default=None, description="Finer step while running (e.g. `training`).")
    step: int | None = Field(default=None, description="Training step, while training.")
    total_steps: int | None = Field(default=None, description="Steps in all, while training.")
    loss: float | None = Field(default=None, description="Latest training loss.")
    progress: int = Field(ge=0, le=100, description="Training progress, 0-100.")
    estimated_remaining: int | None = Field(description="Seconds left, when known.")
    error_message: str | None = Field(default=None, description="Why it failed, if it did.")
    source: Literal["workflow", "database"] = Field(
        description="`workflow`: live from the running training; `database`: the stored record."
    )


class BudgetStatusPublic(BaseModel):
    """``loraflow.domain.budget.BudgetStatus`` as the API shows it."""

    month: str = Field(description="UTC calendar month, YYYY-MM.")
    spent_usd: float = Field(description="Sum of job_costs this month (trainings and keyframes).")
    limit_usd: float = Field(description="At this spend new trainings are refused (503).")
    alert_usd: float = Field(description="At this spend the alert fires (once a month).")
    refusing: bool = Field(description="Whether new trainings are being refused now.")


class HealthCheck(BaseModel):
    ok: bool = Field(description="Whether the API reached it just now (why not is in the API's log).")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: HealthCheck
    temporal: HealthCheck


class ModerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Decision = Field(description="`hide` (out of the library, pending or for good) or `restore`.")
    reason: ModerationReason


class ModerationResult(BaseModel):
    decision_id: int = Field(description="The audit log entry.")
    lora_id: uuid.UUID
    action: Decision
    hidden: bool = Field(description="Whether the LoRA is hidden now.")


class ReportPublic(BaseModel):
    id: int
    reason: ReportReason
    note: str | None
    reporter_id: uuid.UUID
    created_at: datetime


class ReviewItem(BaseModel):
    since: datetime = Field(description="When it entered the queue: its oldest open report, or its hiding.")
    lora: LoraDetail = Field(description="The LoRA as its creator sees it, validation images included.")
    reports: list[ReportPublic] = Field(
        description="Its open reports, oldest first (none: it was hidden by automatic screening)."
    )


class ReviewQueue(BaseModel):
    items: list[ReviewItem]
    limit: int
    offset: int
