"""Starting, watching and cancelling trainings: the API's side of TrainLoraWorkflow."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from loraflow.contracts.limits import MIN_IMAGES
from loraflow.contracts.lora_training import TrainingProgress, TrainLoraInput
from loraflow.db import as_service
from loraflow.domain.images import CheckedImage
from loraflow.errors import UploadsClosed
from loraflow.settings import Settings
from loraflow.storage import Storage
from workflows.lora_training import workflow_id_for

#: Character-LoRA defaults for full-size SDXL (see the README for where the numbers come from).
PRODUCTION_DEFAULTS: dict[str, Any] = {
    "steps": 1000,
    "rank": 16,
    "alpha": 16,
    "learning_rate": 1e-4,
    "resolution": 1024,
    "seed": 42,
    "trigger_word": "ohwx",
}


class TrainingParams(BaseModel):
    """What a user may override, within bounds that keep a training sane and affordable."""

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(default=None, ge=1, le=5000, description="Optimizer steps (default 1000).")
    rank: int | None = Field(default=None, ge=1, le=128, description="LoRA rank (default 16).")
    alpha: int | None = Field(default=None, ge=1, le=256, description="LoRA alpha (default = rank).")
    learning_rate: float | None = Field(default=None, ge=1e-6, le=1e-2, description="Default 1e-4.")
    resolution: int | None = Field(default=None, ge=512, le=1536, multiple_of=64, description="Default 1024.")
    trigger_word: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9]{1,19}$",
        description="Token that invokes the character (default ohwx).",
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="Default 42.")


def resolve_params(settings: Settings, overrides: TrainingParams | None) -> dict[str, Any]:
    if settings.base_model == "tiny":
        from training_scripts.tiny_model import TINY_TRAINING_PARAMS

        # The tiny model has its own preset; only the trigger word, seed and steps carry over.
        base = {**PRODUCTION_DEFAULTS, **TINY_TRAINING_PARAMS}
        allowed = {"trigger_word", "seed", "steps"}
    else:
        base = dict(PRODUCTION_DEFAULTS)
        allowed = set(TrainingParams.model_fields)
    chosen = overrides.model_dump(exclude_none=True) if overrides else {}
    params = {**base, **{k: v for k, v in chosen.items() if k in allowed}}
    if "alpha" not in chosen and "rank" in chosen:
        params["alpha"] = params["rank"]
    return params


def store_uploads(
    storage: Storage, user_id: str, lora_id: str, images: list[tuple[CheckedImage, bytes]], first_index: int
) -> list[str]:
    keys = []
    for offset, (checked, data) in enumerate(images):
        key = f"lora-training-images/{user_id}/{lora_id}/uploaded/{first_index + offset}.{checked.extension}"
        storage.put(key, [data])
        keys.append(key)
    return keys


async def record_uploads(
    pool: AsyncConnectionPool, lora_id: str, keys: list[str], urls: list[str]
) -> list[str]:
    """Append to the LoRA's reference images and return all its image keys; once it has
    MIN_IMAGES the dataset is marked started. Atomic, so of two racing uploads only the ones
    that arrive before the start are taken (the others get ``UploadsClosed``)."""
    async with as_service(pool) as conn:
        row = await (
            await conn.execute(
                """UPDATE lora_models
                      SET reference_image_urls = coalesce(reference_image_urls, '{}') || %(urls)s::text[],
                          training_params = training_params || jsonb_build_object(
                              'image_keys', coalesce(training_params->'image_keys', '[]'::jsonb) || %(keys)s,
                              'started', jsonb_array_length(
                                  coalesce(training_params->'image_keys', '[]'::jsonb) || %(keys)s
                              ) >= %(min)s AND triggered_by_job_id IS NULL)
                    WHERE id = %(id)s AND training_status = 'pending'
                      AND NOT coalesce((training_params->>'started')::boolean, false)
                RETURNING training_params->'image_keys' AS keys""",
                {"urls": urls, "keys": Jsonb(keys), "id": lora_id, "min": MIN_IMAGES},
            )
        ).fetchone()
    if row is None:
        raise UploadsClosed(f"LoRA {lora_id} no longer takes images")
    return list(row["keys"])


def _input(
    settings: Settings, lora_id: str, user_id: str, keys: list[str], params: dict[str, Any]
) -> TrainLoraInput:
    return TrainLoraInput(
        lora_id=lora_id,
        user_id=user_id,
        image_keys=keys,
        params=params,
        image_wait_s=settings.pending_images_timeout_s,
        cost_cap_usd=settings.training_cost_cap_usd,
        max_training_s=settings.max_training_s,
        replicate_fallback=settings.replicate_api_token is not None,
    )


async def start_training(
    client: Client,
    pool: AsyncConnectionPool,
    settings: Settings,
    *,
    lora_id: str,
    user_id: str,
    image_keys: list[str],
    params: dict[str, Any],
) -> bool:
    """Start TrainLoraWorkflow for a new LoRA; False if it was already started (idempotent).

    It is started at creation even without images: it then waits, on a durable timer, for
    ``add_images`` and fails with a reason if none come in time."""
    async with as_service(pool) as conn:
        await conn.execute(
            "UPDATE lora_models SET training_params = training_params || %s, trigger_word = %s WHERE id = %s",
            [Jsonb(params), params.get("trigger_word"), lora_id],
        )
    try:
        await _start_workflow(
            client, settings, lora_id, user_id, image_keys, params, WorkflowIDConflictPolicy.FAIL
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def send_images(
    client: Client,
    settings: Settings,
    *,
    lora_id: str,
    user_id: str,
    image_keys: list[str],
    params: dict[str, Any],
) -> None:
    """Hand the LoRA's images to its workflow: signal-with-start, so a LoRA whose workflow was
    never started (Temporal was away at creation) gets one now, and a retry is harmless."""
    await _start_workflow(
        client, settings, lora_id, user_id, image_keys, params, WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="add_images", start_signal_args=[image_keys],
    )  # fmt: skip


async def _start_workflow(
    client: Client,
    settings: Settings,
    lora_id: str,
    user_id: str,
    image_keys: list[str],
    params: dict[str, Any],
    on_conflict: WorkflowIDConflictPolicy,
    **signal: Any,
) -> None:
    """The one place TrainLoraWorkflow is started for a LoRA: its id, queue and input, and a
    closed workflow's id never reused (a finished LoRA is never trained again)."""
    await client.start_workflow(
        "TrainLoraWorkflow",
        _input(settings, lora_id, user_id, image_keys, params),
        id=workflow_id_for(lora_id),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=on_conflict,
        **signal,
    )


async def mark_failed(pool: AsyncConnectionPool, lora_id: str, reason: str) -> None:
    async with as_service(pool) as conn:
        await conn.execute(
            """UPDATE lora_models SET training_status = 'failed', error_message = %s, completed_at = now()
                WHERE id = %s AND training_status NOT IN ('completed', 'failed')""",
            [reason, lora_id],
        )


async def live_progress(client: Client, lora_id: str, *, timeout: float = 2.0) -> TrainingProgress | None:
    """The running workflow's own view, or None if it is not running (or Temporal is away)."""
    handle = client.get_workflow_handle(workflow_id_for(lora_id))
    try:
        description = await asyncio.wait_for(handle.describe(), timeout)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        return await asyncio.wait_for(handle.query("progress", result_type=TrainingProgress), timeout)
    except (RPCError, TimeoutError):
        return None


async def cancel_training(client: Client, lora_id: str) -> bool:
    """Ask the workflow to stop; it cleans up and ends failed with reason "cancelled"."""
    handle = client.get_workflow_handle(workflow_id_for(lora_id))
    try:
        await handle.cancel()
    except RPCError:
        return False
    return True
