"""Starting, watching and cancelling trainings: the API's side of TrainLoraWorkflow, in Temporal
calls only (the LoRA's record and dataset are ``loraflow.db``'s, its parameters
``loraflow.domain.params``')."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from loraflow.contracts.lora_training import TrainingProgress, TrainLoraInput
from loraflow.contracts.names import train_workflow_id
from loraflow.settings import Settings


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
        validation_steps=settings.resolved_validation_steps,
    )


async def start_training(
    client: Client,
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
        id=train_workflow_id(lora_id),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=on_conflict,
        **signal,
    )


async def live_progress(client: Client, lora_id: str, *, timeout: float = 2.0) -> TrainingProgress | None:
    """The running workflow's own view, or None if it is not running (or Temporal is away)."""
    handle = client.get_workflow_handle(train_workflow_id(lora_id))
    try:
        description = await asyncio.wait_for(handle.describe(), timeout)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        return await asyncio.wait_for(handle.query("progress", result_type=TrainingProgress), timeout)
    except (RPCError, TimeoutError):
        return None


async def cancel_training(client: Client, lora_id: str) -> bool:
    """Ask the workflow to stop; it cleans up and ends failed with reason "cancelled"."""
    handle = client.get_workflow_handle(train_workflow_id(lora_id))
    try:
        await handle.cancel()
    except RPCError:
        return False
    return True
