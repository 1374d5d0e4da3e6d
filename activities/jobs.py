"""Activities of the video-job side: a job's LoRA records, its reference images, its status."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.contracts.errors import ErrorType
from loraflow.contracts.jobs import (
    CharacterLora,
    CreateJobLoraInput,
    FetchReferencesInput,
    JobDataset,
    JobLoraStatus,
    JobLoraStatusRequest,
    compose_dataset,
)
from loraflow.contracts.limits import MAX_IMAGE_BYTES, MIN_IMAGES
from loraflow.contracts.names import generated_image_key
from loraflow.contracts.status import TrainingStatus
from loraflow.db import Caller, as_service, budget, datasets, library
from loraflow.domain.params import TrainingParams, resolve_params
from loraflow.errors import BudgetExhausted, DuplicateName, ImageRejected, MonthlyLimitReached
from loraflow.logging import get_logger
from loraflow.settings import Settings
from loraflow.storage import Storage

log = get_logger(__name__)

_PRIMARY = datasets.PRIMARY_SLOT  # the slot of the job's first LoRA: the one the upload route created


class JobActivities:
    """Async (their DB layer is): they take the worker's async pool."""

    def __init__(self, *, pool: AsyncConnectionPool, storage: Storage, settings: Settings) -> None:
        self._pool = pool
        self._storage = storage
        self._settings = settings
        self._min_side = settings.min_image_side

    @activity.defn(name="create_job_lora")
    async def create_job_lora(self, request: CreateJobLoraInput) -> CharacterLora:
        """The job's pending LoRA for ``slot`` ("primary", or a character id). Idempotent: a
        retry finds the row it made. The first (primary) one is linked as ``jobs.lora_model_id``.
        A taken name gets " 2", " 3"... for derived names; the user's own name must be free."""
        found = await self._job_lora(request.job_id, request.slot, request.user_id)
        if found is not None:
            return found
        await self._check_budget()
        params = self._resolve_params(request.params)
        row = await self._create_named(request, params)
        lora_id = str(row["id"])
        if request.slot == _PRIMARY:
            async with as_service(self._pool) as conn:
                await conn.execute(
                    "UPDATE jobs SET lora_model_id = %s WHERE id = %s AND lora_model_id IS NULL",
                    [lora_id, request.job_id],
                )
        log.info("job_lora_created", job_id=request.job_id, lora_id=lora_id, slot=request.slot,
                 name=row["name"])  # fmt: skip
        return CharacterLora(None if request.slot == _PRIMARY else request.slot, lora_id, row["name"])

    async def _job_lora(self, job_id: str, slot: str, user_id: str) -> CharacterLora | None:
        """The LoRA an earlier attempt made for this slot; refuses a job that does not exist."""
        async with as_service(self._pool) as conn:
            found = await datasets.job_lora(conn, job_id=job_id, slot=slot, user_id=user_id)
            if (
                found is None
                and not await (await conn.execute("SELECT 1 FROM jobs WHERE id = %s", [job_id])).fetchone()
            ):
                raise ApplicationError(
                    f"there is no job {job_id}", type=ErrorType.UNKNOWN_JOB, non_retryable=True
                )
        return CharacterLora(found.character_id, found.lora_id, found.name) if found else None

    async def _check_budget(self) -> None:
        async with as_service(self._pool) as conn:
            try:
                await budget.check_can_train(conn, self._settings)
            except BudgetExhausted as exc:
                raise ApplicationError(str(exc), type=ErrorType.BUDGET_EXHAUSTED, non_retryable=True) from exc

    def _resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The job's overrides, checked as the API checks a user's, over the worker's defaults."""
        try:
            overrides = TrainingParams.model_validate(params) if params else None
        except ValidationError as exc:
            raise ApplicationError(
                f"training_params: {exc}", type=ErrorType.INVALID_PARAMS, non_retryable=True
            ) from exc
        return resolve_params(self._settings, overrides)

    async def _create_named(self, request: CreateJobLoraInput, params: dict[str, Any]) -> dict[str, Any]:
        """Create the LoRA for the user (their monthly limit counts it) under the first free name,
        with its job slot in the same transaction (so that a retry finds it)."""
        user_id, name, slot = request.user_id, request.name, request.slot
        caller = Caller(user_id, None, "authenticated", {"sub": user_id, "role": "authenticated"})
        candidates = [name] if slot == _PRIMARY else [name, *(f"{name} {n}" for n in range(2, 20))]
        for candidate in candidates:
            try:
                async with as_service(self._pool, acting_for=caller) as conn:
                    row = await library.create_lora(
                        conn,
                        caller,
                        library.NewLora(
                            name=candidate,
                            trigger_word=params.get("trigger_word"),
                            training_params=params,
                            triggered_by_job_id=uuid.UUID(request.job_id),
                        ),
                    )
                    await datasets.attach_job(conn, lora_id=str(row["id"]), job_id=request.job_id, slot=slot)
                    return row
            except DuplicateName:
                continue
            except MonthlyLimitReached as exc:
                raise ApplicationError(
                    str(exc), type=ErrorType.MONTHLY_LIMIT_REACHED, non_retryable=True
                ) from exc
        raise ApplicationError(
            f"you already have a LoRA named {name!r}", type=ErrorType.DUPLICATE_NAME, non_retryable=True
        )

    @activity.defn(name="fetch_references")
    async def fetch_references(self, request: FetchReferencesInput) -> JobDataset:
        """Download the character's reference images into storage (checked like uploads; a bad
        one is skipped with a warning), compose the dataset with the user's own uploads (the
        spec's Phase 2 rule), record it on the LoRA and return its keys."""
        lora_id = request.lora_id
        generated = await self._download_references(request.user_id, lora_id, request.urls)
        async with as_service(self._pool) as conn:
            row = await (
                await conn.execute("SELECT training_params FROM lora_models WHERE id = %s", [lora_id])
            ).fetchone()
            params = dict((row or {}).get("training_params") or {})
            uploaded = (await datasets.dataset(conn, lora_id)).image_keys
            dataset = compose_dataset([k for k in uploaded if "/uploaded/" in k], generated)
            if len(dataset) < MIN_IMAGES:
                raise ApplicationError(
                    f"only {len(generated)} of the {len(request.urls)} reference images of character "
                    f"{request.character_id} could be used; a LoRA needs at least {MIN_IMAGES}",
                    type=ErrorType.TOO_FEW_IMAGES,
                    non_retryable=True,
                )
            await datasets.record_job_dataset(
                conn,
                lora_id=lora_id,
                image_keys=dataset,
                urls=[self._storage.url(k) for k in dataset],
                character_id=request.character_id,
            )
        return JobDataset(
            keys=dataset,
            params=params,
            cost_cap_usd=self._settings.training_cost_cap_usd,
            max_training_s=self._settings.max_training_s,
            replicate_fallback=self._settings.replicate_api_token is not None,
            validation_steps=self._settings.resolved_validation_steps,
        )

    async def _download_references(self, user_id: str, lora_id: str, urls: list[str]) -> list[str]:
        """The reference images that could be fetched and pass the upload checks, stored."""
        from loraflow.domain.images import inspect_image, reencode_image  # PIL

        generated = []
        async with httpx.AsyncClient(timeout=60, follow_redirects=True) as http:
            for index, url in enumerate(urls):
                activity.heartbeat(index)
                data = await _download(http, url)
                if data is None:
                    log.warning("reference_image_unreachable", lora_id=lora_id, url=url)
                    continue
                try:
                    checked = inspect_image(url.rsplit("/", 1)[-1] or url, data, min_side=self._min_side)
                except ImageRejected as exc:
                    log.warning("reference_image_rejected", lora_id=lora_id, url=url, reason=str(exc))
                    continue
                key = generated_image_key(user_id, lora_id, index, checked.extension)
                # Stored as uploads are: the pixels alone (no metadata, nothing appended).
                self._storage.put(key, [reencode_image(data, checked.format)])
                generated.append(key)
        return generated

    @activity.defn(name="job_lora_status")
    async def job_lora_status(self, request: JobLoraStatusRequest) -> list[JobLoraStatus]:
        """The job's LoRAs as they stand: what the orchestrator asks once, at video-generation start."""
        async with as_service(self._pool) as conn:
            rows = await datasets.job_loras(conn, request.job_id)
        return [_job_lora_status(r) for r in rows]


def _job_lora_status(row: dict[str, Any]) -> JobLoraStatus:
    status = TrainingStatus(row["training_status"])
    return JobLoraStatus(
        lora_id=str(row["id"]),
        name=row["name"],
        character_id=row["character_id"],
        status=status,
        progress=100 if status == TrainingStatus.COMPLETED else int(row["progress"]),
        error=row["error_message"],
        ready=status == TrainingStatus.COMPLETED and bool(row["validation_passed"]),
    )


async def _download(http: httpx.AsyncClient, url: str) -> bytes | None:
    if not url.startswith(("http://", "https://")):
        return None
    try:
        async with http.stream("GET", url) as r:
            if r.status_code >= 500:
                # The image host is failing: let Temporal retry the activity later.
                raise ApplicationError(f"{url} answered {r.status_code}")
            if r.status_code >= 400:
                return None
            chunks, size = [], 0
            async for chunk in r.aiter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TransportError as exc:
        raise ApplicationError(f"could not fetch {url}: {exc}") from exc
