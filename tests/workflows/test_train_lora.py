"""TrainLoraWorkflow on the real dev server with its real activities. The whole path to a
completed LoRA (upload → pod agent → trainer → storage → validation) is
tests/api/test_training.py::test_from_upload_to_a_completed_lora; here, what ends a training
before any pod exists."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from loraflow.contracts.lora_training import TrainingOutcome, TrainLoraInput
from loraflow.contracts.names import train_workflow_id
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from tests.helpers.loras import new_lora, upload_images
from training_scripts.tiny_model import TINY_TRAINING_PARAMS


@pytest.fixture
def worker_settings(worker: Settings) -> Settings:
    return worker


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


@pytest.mark.parametrize(
    ("planted", "reason"),
    [
        ("keys", "image(s) are not this LoRA's own"),
        ("params", "training parameters out of bounds: steps"),
    ],
)
async def test_a_dataset_or_parameters_not_the_users_own_fail_before_any_pod(
    worker_settings: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    planted: str,
    reason: str,
) -> None:
    """Checked again where training starts, whatever path the input took: someone else's
    photos, or parameters past every limit, never reach a rented GPU."""
    victim_id, victim_lora = await new_lora(pool)
    victims_photos = upload_images(worker_settings, victim_id, victim_lora, n=3)
    user_id, lora_id = await new_lora(pool)
    own = upload_images(worker_settings, user_id, lora_id, n=3)
    outcome = await temporal_env.client.execute_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(
            lora_id=lora_id,
            user_id=user_id,
            image_keys=victims_photos if planted == "keys" else own,
            params={**TINY_TRAINING_PARAMS, "steps": 999_999}
            if planted == "params"
            else TINY_TRAINING_PARAMS,
        ),
        id=train_workflow_id(lora_id),
        task_queue=worker_settings.task_queue,
        result_type=TrainingOutcome,
    )
    assert outcome.status == "failed" and reason in (outcome.error or ""), outcome.error
    assert outcome.pod_seconds == 0 and outcome.stored is None
