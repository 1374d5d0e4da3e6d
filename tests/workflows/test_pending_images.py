"""A LoRA created without images: its workflow waits on a durable timer for ``add_images`` and
fails with a reason the user can act on if they never come; images sent in parts start it."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from loraflow.contracts.lora_training import TrainingOutcome, TrainingProgress
from loraflow.contracts.names import train_workflow_id
from loraflow.settings import Settings
from loraflow.temporal import training_client as trainings
from tests.helpers.histories import record_history
from tests.helpers.loras import new_lora
from training_scripts.tiny_model import TINY_TRAINING_PARAMS


@pytest.mark.records_history
async def test_no_images_in_time_fails_with_that_reason(
    worker: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, pg_dsn: str
) -> None:
    settings = worker.model_copy(update={"pending_images_timeout_s": 3})
    user_id, lora_id = await new_lora(pool)
    client = temporal_env.client
    started = await trainings.start_training(
        client, settings, lora_id=lora_id, user_id=user_id, image_keys=[], params=TINY_TRAINING_PARAMS
    )
    assert started
    # Idempotent: a retried create does not start a second training.
    assert not await trainings.start_training(
        client, settings, lora_id=lora_id, user_id=user_id, image_keys=[], params=TINY_TRAINING_PARAMS
    )
    handle = client.get_workflow_handle(train_workflow_id(lora_id), result_type=TrainingOutcome)
    # Two images are not enough to start it.
    await trainings.send_images(
        client, settings, lora_id=lora_id, user_id=user_id, image_keys=["a", "b"], params={}
    )
    outcome = await handle.result()
    assert outcome.status == "failed"
    assert outcome.error == (
        "no images arrived within 3 s of creating the LoRA (it needs at least 3); "
        "create it again with its images"
    )
    final = await handle.query("progress", result_type=TrainingProgress)
    assert final.phase == "failed" and final.error == outcome.error
    with psycopg.connect(pg_dsn) as conn:
        status, error = conn.execute(
            "SELECT training_status, error_message FROM lora_models WHERE id = %s", [lora_id]
        ).fetchone()
        pods = conn.execute(
            "SELECT count(*) FROM lora_training_jobs WHERE lora_model_id = %s", [lora_id]
        ).fetchone()
    assert (status, error) == ("failed", outcome.error)
    assert pods == (0,)
    await record_history(handle, "train_pending_timeout")


@pytest.mark.records_history
async def test_waiting_workflow_shows_its_phase_and_can_be_cancelled(
    worker: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool
) -> None:
    user_id, lora_id = await new_lora(pool)
    client = temporal_env.client
    await trainings.start_training(
        client, worker, lora_id=lora_id, user_id=user_id, image_keys=["x"], params={}
    )
    handle = client.get_workflow_handle(train_workflow_id(lora_id), result_type=TrainingOutcome)
    progress = await trainings.live_progress(client, lora_id, timeout=10)
    assert progress is not None and progress.status == "pending"
    assert await trainings.cancel_training(client, lora_id)
    outcome = await handle.result()
    assert (outcome.status, outcome.error) == ("failed", "cancelled")
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    await record_history(handle, "train_cancelled")
