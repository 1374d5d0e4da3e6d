"""Durability for real: the worker process is killed with SIGKILL in the middle of a training
and started again. No second pod is created, the progress record survives, and the training
still ends completed with its pod cleaned up."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from loraflow.compute.local import LocalProvider
from loraflow.contracts.lora_training import TrainingOutcome, TrainingProgress, TrainLoraInput
from loraflow.contracts.names import pod_name, train_workflow_id
from loraflow.devstack.embedded import stop_process
from loraflow.settings import Settings
from tests.helpers.loras import new_lora, upload_images
from tests.workflows.worker_process import start_worker
from training_scripts.tiny_model import TINY_TRAINING_PARAMS

TASK_QUEUE = "loraflow-crash-test"


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return start_worker(settings, TASK_QUEUE, log)


async def _progress(handle: WorkflowHandle) -> TrainingProgress:
    return await handle.query("progress", result_type=TrainingProgress)


async def _wait_for(handle: WorkflowHandle, check, timeout: float = 300) -> TrainingProgress:
    async with asyncio.timeout(timeout):
        while True:
            progress = await _progress(handle)
            if check(progress):
                return progress
            await asyncio.sleep(0.2)


async def test_sigkill_mid_training_then_restart(
    worker: Settings,  # the session's pod cleanup; this test runs its own worker processes
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    pg_dsn: str,
    tmp_path: Path,
) -> None:
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(settings, user_id, lora_id)
    log = tmp_path / "worker.log"
    worker = _start_worker(settings, log)
    handle = await temporal_env.client.start_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(lora_id=lora_id, user_id=user_id, image_keys=keys, params=TINY_TRAINING_PARAMS),
        id=train_workflow_id(lora_id),
        task_queue=TASK_QUEUE,
        result_type=TrainingOutcome,
    )
    try:
        before = await _wait_for(handle, lambda p: p.phase == "training" and p.step > 0)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        with psycopg.connect(pg_dsn) as conn:
            recorded = conn.execute(
                "SELECT runpod_pod_id, training_progress FROM lora_training_jobs WHERE lora_model_id = %s",
                [lora_id],
            ).fetchall()
        assert len(recorded) == 1 and recorded[0][0] == before.pod_id  # recorded before the crash

        worker = _start_worker(settings, log)
        outcome = await asyncio.wait_for(handle.result(), timeout=600)
        after = await _progress(handle)  # queries need a worker, even on a closed workflow
    finally:
        stop_process(worker)

    assert outcome.status == "completed", outcome
    assert after.pod_id == before.pod_id and after.step == TINY_TRAINING_PARAMS["steps"]
    provider = LocalProvider(Path(settings.data_dir), base_model="unused")
    pods = sorted((Path(settings.data_dir) / "pods").glob(f"{pod_name(train_workflow_id(lora_id))}*.json"))
    assert len(pods) == 1  # one pod for this training, ever
    assert provider.describe(before.pod_id).status == "terminated"
    with psycopg.connect(pg_dsn) as conn:
        jobs = conn.execute(
            "SELECT runpod_pod_id, training_progress FROM lora_training_jobs WHERE lora_model_id = %s",
            [lora_id],
        ).fetchall()
        status = conn.execute("SELECT training_status FROM lora_models WHERE id = %s", [lora_id]).fetchone()
    assert jobs == [(before.pod_id, 100)] and status == ("completed",)
