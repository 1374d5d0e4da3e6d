"""Activities of the video-job side: a job's LoRA records, its reference images, its status."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.contracts.errors import ErrorType
from loraflow.contracts.jobs import (
    CharacterLora,
    JobDataset,
    JobLoraStatus,
    compose_dataset,
)
from loraflow.contracts.limits import MIN_IMAGES
from loraflow.db import Caller, as_caller, as_service, budget, library
from loraflow.domain.images import MAX_BYTES, inspect_image
from loraflow.errors import BudgetExhausted, DuplicateName, ImageRejected, MonthlyLimitReached
from loraflow.logging import get_logger
from loraflow.settings import Settings
from loraflow.storage import Storage
from loraflow.temporal.training_client import TrainingParams, resolve_params

log = get_logger(__name__)

#: ApplicationError types the client maps to its exceptions.
#: Keys of training_params that record the LoRA's state, not how to train it.
_BOOKKEEPING = {"image_keys", "started", "job_slot", "character_id"}


class JobActivities:
    def __init__(self, *, pool: AsyncConnectionPool, storage: Storage, settings: Settings) -> None:
        self._pool = pool
        self._storage = storage
        self._settings = settings
        self._min_side = settings.min_image_side

    @activity.defn(name="create_job_lora")
    async def create_job_lora(
        self, job_id: str, user_id: str, name: str, slot: str, params: dict[str, Any]
    ) -> CharacterLora:
        """The job's pending LoRA for ``slot`` ("primary", or a character id). Idempotent: a
        retry finds the row it made. The first (primary) one is linked as ``jobs.lora_model_id``.
        A taken name gets " 2", " 3"... for derived names; the user's own name must be free."""
        async with as_service(self._pool) as conn:
            found = await (
                await conn.execute(
                    """SELECT id, name, training_params->>'character_id' AS character_id FROM lora_models
                        WHERE triggered_by_job_id = %s AND training_params->>'job_slot' = %s""",
                    [job_id, slot],
                )
            ).fetchone()
            if (
                found is None
                and not await (await conn.execute("SELECT 1 FROM jobs WHERE id = %s", [job_id])).fetchone()
            ):
                raise ApplicationError(
                    f"there is no job {job_id}", type=ErrorType.UNKNOWN_JOB, non_retryable=True
                )
        if found:
            return CharacterLora(found["character_id"], str(found["id"]), found["name"])
        async with as_service(self._pool) as conn:
            try:
                await budget.check_can_train(conn, self._settings)
            except BudgetExhausted as exc:
                raise ApplicationError(str(exc), type=ErrorType.BUDGET_EXHAUSTED, non_retryable=True) from exc

        try:
            overrides = TrainingParams.model_validate(params) if params else None
        except ValidationError as exc:
            raise ApplicationError(
                f"training_params: {exc}", type=ErrorType.INVALID_PARAMS, non_retryable=True
            ) from exc
        params = resolve_params(self._settings, overrides)
        caller = Caller(user_id, None, "authenticated", {"sub": user_id, "role": "authenticated"})
        candidates = [name] if slot == "primary" else [name, *(f"{name} {n}" for n in range(2, 20))]
        for candidate in candidates:
            try:
                async with as_caller(self._pool, caller) as conn:
                    row = await library.create_lora(
                        conn,
                        caller,
                        library.NewLora(
                            name=candidate,
                            trigger_word=params.get("trigger_word"),
                            training_params={**params, "job_slot": slot},
                            triggered_by_job_id=uuid.UUID(job_id),
                        ),
                    )
                break
            except DuplicateName:
                continue
            except MonthlyLimitReached as exc:
                raise ApplicationError(
                    str(exc), type=ErrorType.MONTHLY_LIMIT_REACHED, non_retryable=True
                ) from exc
        else:
            raise ApplicationError(
                f"you already have a LoRA named {name!r}", type=ErrorType.DUPLICATE_NAME, non_retryable=True
            )
        lora_id = str(row["id"])
        if slot == "primary":
            async with as_service(self._pool) as conn:
                await conn.execute(
                    "UPDATE jobs SET lora_model_id = %s WHERE id = %s AND lora_model_id IS NULL",
                    [lora_id, job_id],
                )
        log.info("job_lora_created", job_id=job_id, lora_id=lora_id, slot=slot, name=row["name"])
        return CharacterLora(None if slot == "primary" else slot, lora_id, row["name"])

    @activity.defn(name="fetch_references")
    async def fetch_references(
        self, user_id: str, lora_id: str, character_id: str, urls: list[str]
    ) -> JobDataset:
        """Download the character's reference images into storage (checked like uploads; a bad
        one is skipped with a warning), compose the dataset with the user's own uploads (the
        spec's Phase 2 rule), record it on the LoRA and return its keys."""
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
                key = f"lora-training-images/{user_id}/{lora_id}/generated/{index}.{checked.extension}"
                self._storage.put(key, [data])
                generated.append(key)
        async with as_service(self._pool) as conn:
            row = await (
                await conn.execute("SELECT training_params FROM lora_models WHERE id = %s", [lora_id])
            ).fetchone()
            stored_params = dict((row or {}).get("training_params") or {})
            uploaded = list(stored_params.get("image_keys", []))
            dataset = compose_dataset([k for k in uploaded if "/uploaded/" in k], generated)
            if len(dataset) < MIN_IMAGES:
                raise ApplicationError(
                    f"only {len(generated)} of the {len(urls)} reference images of character "
                    f"{character_id} could be used; a LoRA needs at least {MIN_IMAGES}",
                    type=ErrorType.TOO_FEW_IMAGES,
                    non_retryable=True,
                )
            await conn.execute(
                """UPDATE lora_models
                      SET reference_image_urls = %s,
                          training_params = training_params || jsonb_build_object(
                              'image_keys', %s::jsonb, 'started', true, 'character_id', %s::text)
                    WHERE id = %s""",
                [[self._storage.url(k) for k in dataset], Jsonb(dataset), character_id, lora_id],
            )
        params = {k: v for k, v in stored_params.items() if k not in _BOOKKEEPING}
        return JobDataset(
            keys=dataset,
            params=params,
            cost_cap_usd=self._settings.training_cost_cap_usd,
            max_training_s=self._settings.max_training_s,
            replicate_fallback=self._settings.replicate_api_token is not None,
        )

    @activity.defn(name="job_lora_status")
    async def job_lora_status(self, job_id: str) -> list[JobLoraStatus]:
        """The job's LoRAs as they stand: what the orchestrator asks once, at video-generation start."""
        async with as_service(self._pool) as conn:
            rows = await (
                await conn.execute(
                    """SELECT m.id, m.name, m.training_status, m.error_message, m.validation_passed,
                              m.training_params->>'character_id' AS character_id,
                              coalesce(j.training_progress, 0) AS progress
                         FROM lora_models m
                         LEFT JOIN LATERAL (
                           SELECT training_progress FROM lora_training_jobs
                            WHERE lora_model_id = m.id ORDER BY created_at DESC LIMIT 1) j ON true
                        WHERE m.triggered_by_job_id = %s ORDER BY m.created_at""",
                    [job_id],
                )
            ).fetchall()
        return [
            JobLoraStatus(
                lora_id=str(r["id"]),
                name=r["name"],
                character_id=r["character_id"],
                status=r["training_status"],
                progress=100 if r["training_status"] == "completed" else int(r["progress"]),
                error=r["error_message"],
                ready=r["training_status"] == "completed" and bool(r["validation_passed"]),
            )
            for r in rows
        ]


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
                if size > MAX_BYTES:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TransportError as exc:
        raise ApplicationError(f"could not fetch {url}: {exc}") from exc
