"""A running training is bounded: past its time cap (or cost cap) it is stopped, its pod
cleaned up, and it fails with a reason the user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from loraflow.compute.local import LocalProvider
from loraflow.contracts.lora_training import TrainingOutcome, TrainLoraInput
from loraflow.contracts.names import train_workflow_id
from loraflow.settings import Settings
from tests.helpers.histories import record_history
from tests.helpers.loras import new_lora, upload_images
from training_scripts.tiny_model import TINY_TRAINING_PARAMS
from workflows.lora_training import cap_reason


@pytest.mark.records_history
async def test_time_cap_stops_a_running_training_and_cleans_up(
    worker: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool
) -> None:
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(worker, user_id, lora_id, n=3)
    outcome = await temporal_env.client.execute_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(
            lora_id=lora_id, user_id=user_id, image_keys=keys, params=TINY_TRAINING_PARAMS, max_training_s=4
        ),
        id=train_workflow_id(lora_id),
        task_queue=worker.task_queue,
        result_type=TrainingOutcome,
    )
    assert outcome.status == "failed"
    assert outcome.error == "stopped: this training ran longer than its 4 s limit"
    assert LocalProvider(Path(worker.data_dir), base_model="unused").list_pods() == []
    await record_history(
        temporal_env.client.get_workflow_handle(train_workflow_id(lora_id)), "train_time_cap"
    )


@pytest.mark.parametrize(
    ("elapsed", "price", "expected"),
    [
        (600, 0.69, None),
        (3600 * 8, 0.69, "cost reached its $5.00 cap"),  # $5.52 > $5
        (3600 * 4, 0.0, "ran longer than its 3 h limit"),
    ],
)
def test_cap_reason(elapsed: float, price: float, expected: str | None) -> None:
    reason = cap_reason(elapsed, price, cost_cap_usd=5.0, max_training_s=3 * 3600)
    assert (reason is None) if expected is None else (reason is not None and expected in reason)
