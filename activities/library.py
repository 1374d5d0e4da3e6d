"""The library activities: prepare-dataset (before any pod), store, validate, record (after).

They check what enters the library and keep its record: the dataset's images are checked and
screened again (the bytes in storage are what trains), a LoRA file is checked before it is
stored (never overwritten), each validation image is scored, and the outcome, validation and
cost are recorded (with a LoRA whose validation images screening flagged hidden for review).
Idempotent and synchronous, like the pod activities. PIL and torch are imported inside the
methods that use them: a workflow imports this module for the activities' signatures.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import beating, heartbeating
from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import (
    PrepareDatasetInput,
    PreparedDataset,
    RecordOutcomeInput,
    Screening,
    StagedArtifact,
    StoredLora,
    StoreLoraInput,
    TrainingOutcome,
    ValidationRequest,
    ValidationScore,
)
from loraflow.contracts.names import lora_images_prefix, staged_image_key, stored_lora_key, training_job_id
from loraflow.contracts.status import TrainingStatus
from loraflow.db import budget
from loraflow.domain.params import params_problem
from loraflow.errors import ImageRejected, ObjectNotFound
from loraflow.logging import get_logger
from loraflow.ml.trained_tokens import EMBEDDING_PREFIX, EMBEDDING_TARGETS, token_map_of
from loraflow.storage import Storage

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from loraflow.ml.screening import ImageScreen
    from loraflow.ml.validation import Validator
    from loraflow.settings import Settings

log = get_logger(__name__)
#: safetensors refuses headers over 100 MiB; so do we.
_MAX_HEADER = 100 * 1024 * 1024


class LibraryActivities:
    def __init__(
        self,
        *,
        pool: ConnectionPool,
        storage: Storage,
        settings: Settings,
        screen: ImageScreen | None = None,
    ) -> None:
        self._pool = pool
        self._storage = storage
        self._settings = settings
        self._screen = screen  # automatic screening of the dataset; None: off

    @activity.defn(name="prepare_dataset")
    def prepare_dataset(self, request: PrepareDatasetInput) -> PreparedDataset:
        """Check every image again (the bytes in storage are what trains), screen it (a video
        job's references never passed the API's screening) and stage normalised PNGs under the
        staging bucket (``names.staged_image_key``). Bad data is not retryable; a flagged image
        fails the training here, before any machine is rented."""
        from loraflow.domain.images import inspect_image, normalise_image  # PIL

        self._check_dataset(request)
        staged = []
        for index, key in enumerate(request.image_keys):
            try:
                data = b"".join(self._storage.get(key))
            except ObjectNotFound as exc:
                raise ApplicationError(f"image {key} is missing from storage", non_retryable=True) from exc
            try:
                inspect_image(key.rsplit("/", 1)[-1], data, min_side=self._settings.min_image_side)
            except ImageRejected as exc:
                raise ApplicationError(str(exc), type=ErrorType.BAD_IMAGE, non_retryable=True) from exc
            normalised = normalise_image(data)
            self._refuse_if_flagged(request.lora_id, index, normalised)
            target = staged_image_key(request.lora_id, index)
            self._storage.put(target, [normalised])
            staged.append(target)
            activity.heartbeat(index)
        return PreparedDataset(keys=staged)

    def _refuse_if_flagged(self, lora_id: str, index: int, image: bytes) -> None:
        if self._screen is None:
            return
        screening = self._screen.screen(image)
        if screening.flagged:
            log.warning(
                "training_image_flagged", lora_id=lora_id, image=index + 1, findings=screening.describe()
            )
            raise ApplicationError(
                f"image {index + 1} was refused by automatic screening (explicit content: "
                f"{screening.describe()}); nothing was trained. Use images without nudity.",
                type=ErrorType.BAD_IMAGE,
                non_retryable=True,
            )

    def _check_dataset(self, request: PrepareDatasetInput) -> None:
        """Train only on the LoRA's own images, with parameters within bounds: what reaches here
        may have passed through hands other than the API's."""
        if request.params is not None and (problem := params_problem(self._settings, request.params)):
            raise ApplicationError(problem, type=ErrorType.INVALID_PARAMS, non_retryable=True)
        with self._pool.connection() as conn:
            row = conn.execute("SELECT user_id FROM lora_models WHERE id = %s", [request.lora_id]).fetchone()
        if row is None:
            raise ApplicationError(f"there is no LoRA {request.lora_id}", non_retryable=True)
        prefix = lora_images_prefix(str(row[0]), request.lora_id)
        foreign = [key for key in request.image_keys if not key.startswith(prefix) or ".." in key]
        if foreign:
            raise ApplicationError(
                f"{len(foreign)} image(s) are not this LoRA's own (they must be under {prefix})",
                type=ErrorType.BAD_IMAGE,
                non_retryable=True,
            )

    @activity.defn(name="store_lora")
    def store_lora(self, request: StoreLoraInput) -> StoredLora:
        """Check the safetensors header, copy it to the library (never overwriting) and record it."""
        staged = request.staged
        metadata = _safetensors_metadata(self._safetensors_head(staged), staged.size)
        key = stored_lora_key(request.lora_id, staged.sha256)
        stored = self._storage.put(key, beating(self._storage.get(staged.key)))
        if stored.sha256 != staged.sha256:
            raise ApplicationError("stored LoRA does not match the downloaded one")
        url = self._storage.url(key)
        with self._pool.connection() as conn:
            conn.execute(
                """UPDATE lora_models SET storage_path = %s, storage_url = %s, file_size = %s, sha256 = %s,
                          base_model = %s, trigger_word = %s
                    WHERE id = %s""",
                [
                    key,
                    url,
                    stored.size,
                    stored.sha256,
                    metadata.get("loraflow.base_model", "sdxl"),
                    request.trigger_word,
                    request.lora_id,
                ],
            )
        return StoredLora(key, url, stored.size, stored.sha256)

    def _safetensors_head(self, staged: StagedArtifact) -> bytes:
        """The file's first 8 bytes and its whole JSON header (a real SDXL LoRA's header runs past
        64 KiB), read without loading the tensors; at most the 100 MiB safetensors allows."""
        want = 1 << 16
        while True:
            head = b"".join(_take(self._storage.get(staged.key, chunk_size=1 << 16), want))
            needed = 8 + _header_length(head)
            if len(head) >= needed or len(head) < want or needed > _MAX_HEADER + 8:
                return head
            want = needed

    @activity.defn(name="record_outcome")
    def record_outcome(self, request: RecordOutcomeInput) -> None:
        """The final record: status, validation, cost (in lora_models and job_costs). Idempotent."""
        outcome, job_id = request.outcome, training_job_id(request.workflow_id)
        urls = [s.image_url for s in outcome.scores] or None
        report = Jsonb(asdict(outcome.validation)) if outcome.validation else None
        passed = outcome.status == TrainingStatus.COMPLETED
        cost = Decimal(str(round(outcome.cost_usd, 4)))
        hidden = screening_reason(outcome)  # None: nothing flagged; the LoRA stays as it is
        with self._pool.connection() as conn:
            with conn.transaction():
                conn.execute(
                    """UPDATE lora_models
                          SET training_status = %s, error_message = %s, validation_passed = %s,
                              validation_image_urls = coalesce(%s, validation_image_urls), training_cost = %s,
                              validation_report = coalesce(%s, validation_report), completed_at = now(),
                              hidden_at = CASE WHEN %s::text IS NULL THEN hidden_at
                                               ELSE coalesce(hidden_at, now()) END,
                              hidden_reason = CASE WHEN %s::text IS NULL OR hidden_at IS NOT NULL
                                                   THEN hidden_reason ELSE %s END
                        WHERE id = %s AND training_status NOT IN ('completed', 'failed')""",
                    [outcome.status, outcome.error, passed, urls, cost, report, hidden, hidden, hidden,
                     outcome.lora_id],
                )  # fmt: skip
                conn.execute(
                    """UPDATE lora_training_jobs
                          SET completed_at = coalesce(completed_at, now()), error_message = %s,
                              training_progress = CASE WHEN %s THEN 100 ELSE training_progress END
                        WHERE id = %s""",
                    [outcome.error, passed, job_id],
                )
                if outcome.pod_seconds > 0:
                    conn.execute(
                        """INSERT INTO job_costs (id, lora_model_id, service, cost)
                           VALUES (%s, %s, 'lora_training', %s) ON CONFLICT (id) DO NOTHING""",
                        [job_id, outcome.lora_id, cost],
                    )
            if outcome.pod_seconds > 0:
                budget.alert_if_crossed(conn, self._settings)  # after the commit: it counts this cost
        if hidden:
            log.warning("lora_hidden_for_review", lora_id=outcome.lora_id, reason=hidden)
        log.info(
            "training_recorded", workflow_id=request.workflow_id, lora_id=outcome.lora_id, **_brief(outcome)
        )


class InWorkerValidationActivities:
    """validate_image: generation inside the worker, as workflows started before
    ``validate-on-machine`` (workflows/lora_training.py) still schedule it. Its pipeline loads
    only when such a workflow calls it; newer ones validate on the machine that trained
    (activities/validation.py). Remove it once no such workflow runs."""

    def __init__(self, *, validator: Validator, storage: Storage, screen: ImageScreen | None = None) -> None:
        self._validator = validator
        self._storage = storage
        self._screen = screen

    @activity.defn(name="validate_image")
    def validate_image(self, request: ValidationRequest) -> ValidationScore:
        with heartbeating("generating"):
            score = self._validator.score(request, self._storage)
        if self._screen is None:
            return score
        image = b"".join(self._storage.get(score.image_key))
        return replace(score, screening=self._screen.screen(image))


def screening_reason(outcome: TrainingOutcome) -> str | None:
    """Why the LoRA goes up for review (``lora_models.hidden_reason``), when automatic screening
    flagged any image generated with it: any checkpoint's, kept or not (they all learned from the
    same images), on either validation path. The control is the base model's own image, no
    evidence about the LoRA. None when nothing was flagged (or nothing was screened)."""
    flagged: list[tuple[str, Screening]] = []
    for prompt in outcome.validation.prompts if outcome.validation else []:
        for image in prompt.checkpoints:
            if image.screening is not None and image.screening.flagged:
                flagged.append((f"prompt {prompt.index + 1}, step {image.step}", image.screening))
    for score in outcome.scores:
        if score.screening is not None and score.screening.flagged:
            flagged.append((f"prompt {score.index + 1}", score.screening))
    if not flagged:
        return None
    where, first = flagged[0]
    more = f" and {len(flagged) - 1} more" if len(flagged) > 1 else ""
    return (
        f"automatic screening: a validation image ({where}{more}) shows explicit content "
        f"({first.describe()}); pending review"
    )


def _brief(outcome: TrainingOutcome) -> dict[str, Any]:
    data = asdict(outcome)
    return {k: data[k] for k in ("status", "error", "cost_usd", "pod_seconds")}


def _header_length(head: bytes) -> int:
    """A safetensors file starts with its JSON header's length, 8 bytes little-endian."""
    return struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0


def _take(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    taken = 0
    for chunk in chunks:
        yield chunk
        taken += len(chunk)
        if taken >= limit:
            return


def _safetensors_metadata(head: bytes, size: int) -> dict[str, str]:
    """Validate a safetensors header enough to trust the file: length, JSON, LoRA tensors."""
    if len(head) < 8:
        raise ApplicationError("the LoRA file is too short to be safetensors", non_retryable=True)
    (length,) = struct.unpack("<Q", head[:8])
    if length > min(size - 8, _MAX_HEADER):
        raise ApplicationError("the LoRA file's header is larger than the file", non_retryable=True)
    raw = head[8 : 8 + length]
    if len(raw) < length:
        raise ApplicationError("the LoRA file's header is too large to check", non_retryable=True)
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApplicationError("the LoRA file's header is not JSON", non_retryable=True) from exc
    tensors = [k for k in header if k != "__metadata__"]
    embeddings = {k for k in tensors if k.startswith(EMBEDDING_PREFIX)}
    lora = [k for k in tensors if k not in embeddings]
    if not lora or not all("lora" in k for k in lora):
        raise ApplicationError("the file holds no LoRA tensors", non_retryable=True)
    metadata = header.get("__metadata__", {})
    try:
        token_map = token_map_of(metadata)
    except ValueError as exc:
        raise ApplicationError(f"the LoRA file's trained tokens: {exc}", non_retryable=True) from exc
    # Trained tokens come whole (a map and one embedding per text encoder) or not at all.
    if bool(token_map) != bool(embeddings) or (
        embeddings and embeddings != {EMBEDDING_PREFIX + name for name in EMBEDDING_TARGETS}
    ):
        raise ApplicationError("the LoRA file's trained tokens are incomplete", non_retryable=True)
    return metadata
