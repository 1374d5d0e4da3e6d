"""TrainLoraWorkflow end to end on the real dev server: worker → local pod agent → trainer →
storage → validation, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from loraflow.compute import PodStatus
from loraflow.compute.local import LocalProvider
from loraflow.contracts.lora_training import TrainingOutcome, TrainingProgress, TrainLoraInput
from loraflow.contracts.names import train_workflow_id
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from tests.helpers.histories import record_history
from tests.helpers.loras import new_lora, upload_images
from training_scripts.tiny_model import TINY_TRAINING_PARAMS


@pytest.fixture
def worker_settings(worker: Settings) -> Settings:
    return worker


@pytest.mark.records_history
async def test_trains_stores_validates_and_cleans_up(
    worker_settings: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, pg_dsn: str
) -> None:
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(worker_settings, user_id, lora_id)
    client = temporal_env.client
    outcome = await client.execute_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(lora_id=lora_id, user_id=user_id, image_keys=keys, params=TINY_TRAINING_PARAMS),
        id=train_workflow_id(lora_id),
        task_queue=worker_settings.task_queue,
        result_type=TrainingOutcome,
    )
    assert outcome.status == "completed", outcome
    assert len(outcome.scores) == 3 and sum(s.shows_character for s in outcome.scores) >= 2
    assert outcome.stored is not None
    storage = LocalStorage(Path(worker_settings.data_dir) / "storage")
    assert storage.stat(outcome.stored.key).sha256 == outcome.stored.sha256
    assert outcome.stored.key == f"lora-models/{lora_id}/{outcome.stored.sha256}.safetensors"

    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "SELECT training_status, validation_passed, sha256, file_size, storage_path, "
            "cardinality(validation_image_urls), completed_at IS NOT NULL FROM lora_models WHERE id = %s",
            [lora_id],
        ).fetchone()
        job = conn.execute(
            "SELECT runpod_pod_id, training_progress FROM lora_training_jobs WHERE lora_model_id = %s",
            [lora_id],
        ).fetchall()
    assert row == ("completed", True, outcome.stored.sha256, outcome.stored.size, outcome.stored.key, 3, True)
    assert len(job) == 1 and job[0][0] and job[0][1] == 100

    provider = LocalProvider(Path(worker_settings.data_dir), base_model="unused")
    assert provider.describe(job[0][0]).status == PodStatus.terminated
    assert provider.list_pods() == []

    handle = client.get_workflow_handle(train_workflow_id(lora_id))
    progress = await handle.query("progress", result_type=TrainingProgress)
    assert (progress.status, progress.progress, progress.step) == (
        "completed",
        100,
        TINY_TRAINING_PARAMS["steps"],
    )

    # The search attributes change on transitions only (not on every poll): each status once,
    # in order, and the progress in 10 % steps.
    upserts = [
        event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for event in (await handle.fetch_history()).events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    statuses = [json.loads(fields["LoraStatus"].data) for fields in upserts if "LoraStatus" in fields]
    steps = [json.loads(fields["LoraProgress"].data) for fields in upserts if "LoraProgress" in fields]
    assert statuses == ["pending", "training", "validating", "completed"]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 100
    assert all(step % 10 == 0 for step in steps)
    await record_history(handle, "train_completed")


async def test_bad_images_fail_without_a_pod(
    worker_settings: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, pg_dsn: str
) -> None:
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(worker_settings, user_id, lora_id, n=3)
    storage = LocalStorage(Path(worker_settings.data_dir) / "storage")
    bad = f"lora-training-images/{user_id}/{lora_id}/uploaded/3.png"
    storage.put(bad, [b"definitely not a png"])
    outcome = await temporal_env.client.execute_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(
            lora_id=lora_id, user_id=user_id, image_keys=[*keys, bad], params=TINY_TRAINING_PARAMS
        ),
        id=train_workflow_id(lora_id),
        task_queue=worker_settings.task_queue,
        result_type=TrainingOutcome,
    )
    assert outcome.status == "failed"
    assert "3.png" in (outcome.error or "") and "not an image" in (outcome.error or "")
    with psycopg.connect(pg_dsn) as conn:
        status, error = conn.execute(
            "SELECT training_status, error_message FROM lora_models WHERE id = %s", [lora_id]
        ).fetchone()
        pods = conn.execute(
            "SELECT count(*) FROM lora_training_jobs WHERE lora_model_id = %s", [lora_id]
        ).fetchone()
    assert status == "failed" and "not an image" in error
    assert pods == (0,)  # bad data is caught before any pod is paid for
