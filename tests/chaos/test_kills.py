"""Processes killed for real (SIGKILL) in the middle of a training, on the embedded stack: the
worker (then started again), and the pod's agent (its trainer dies with it). Each time the
training reaches one terminal state within a bounded time, no pod is left alive, no pod is made
twice, and the stored file is the one the database records."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
from collections.abc import Callable
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
from loraflow.storage.local import LocalStorage
from tests.helpers.loras import QUICK_TRAINING_PARAMS, assert_every_phase_ran, new_lora, upload_images
from tests.helpers.worker_process import start_worker

TASK_QUEUE = "loraflow-chaos"
#: From the kill to the training's end: the heartbeat timeout (15 s), a new pod when it was lost,
#: the rest of a quick training and its validation, on 2 busy cores.
RECOVERY_BOUND_S = 240


async def _progress(handle: WorkflowHandle) -> TrainingProgress:
    return await handle.query("progress", result_type=TrainingProgress)


async def _wait_for(handle: WorkflowHandle, check: Callable[[TrainingProgress], bool]) -> TrainingProgress:
    async with asyncio.timeout(300):
        while not check(progress := await _progress(handle)):
            await asyncio.sleep(0.2)
    return progress


async def _start_training(
    settings: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool
) -> tuple[str, WorkflowHandle]:
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(settings, user_id, lora_id)
    handle = await temporal_env.client.start_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(lora_id=lora_id, user_id=user_id, image_keys=keys, params=QUICK_TRAINING_PARAMS),
        id=train_workflow_id(lora_id),
        task_queue=TASK_QUEUE,
        result_type=TrainingOutcome,
    )
    return lora_id, handle


def _assert_nothing_left_and_the_file_is_the_recorded_one(
    settings: Settings, pg_dsn: str, lora_id: str, outcome: TrainingOutcome, pods_expected: int
) -> None:
    assert_every_phase_ran(outcome)
    workflow_id = train_workflow_id(lora_id)
    records = sorted((Path(settings.data_dir) / "pods").glob(f"{pod_name(workflow_id)}*.json"))
    assert len(records) == pods_expected, [r.name for r in records]  # never a duplicate pod
    provider = LocalProvider(Path(settings.data_dir), base_model="unused")
    for record in records:
        assert provider.describe(json.loads(record.read_text())["pod_id"]).status == "terminated"
    with psycopg.connect(pg_dsn) as conn:
        path, sha256, status = conn.execute(
            "SELECT storage_path, sha256, training_status FROM lora_models WHERE id = %s", [lora_id]
        ).fetchone()
    assert status == outcome.status
    if outcome.stored is None:  # a 40-step LoRA may not pass validation: then nothing is kept
        assert path is None and sha256 is None
        return
    stored = b"".join(LocalStorage(Path(settings.data_dir) / "storage").get(path))
    assert hashlib.sha256(stored).hexdigest() == sha256 == outcome.stored.sha256


async def test_the_worker_killed_mid_training_then_restarted(
    worker: Settings,  # the session's pod cleanup; this test runs its own worker processes
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    pg_dsn: str,
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    process = start_worker(settings, TASK_QUEUE, log)
    try:
        lora_id, handle = await _start_training(settings, temporal_env, pool)
        before = await _wait_for(handle, lambda p: p.phase == "training")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed = time.monotonic()
        process = start_worker(settings, TASK_QUEUE, log)
        outcome = await asyncio.wait_for(handle.result(), timeout=RECOVERY_BOUND_S)
        took = time.monotonic() - killed
        after = await _progress(handle)  # queries need a worker, even on a closed workflow
    finally:
        stop_process(process)
    assert after.pod_id == before.pod_id  # the same pod, found again, not a second one
    _assert_nothing_left_and_the_file_is_the_recorded_one(settings, pg_dsn, lora_id, outcome, pods_expected=1)
    print(f"worker killed in training: ended {took:.1f} s after the kill")


async def test_the_pod_agent_killed_mid_training(
    worker: Settings,
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    pg_dsn: str,
    tmp_path: Path,
) -> None:
    """Like a spot pod preempted: the training goes on, on a new pod, and both are billed."""
    log = tmp_path / "worker.log"
    process = start_worker(settings, TASK_QUEUE, log)
    try:
        lora_id, handle = await _start_training(settings, temporal_env, pool)
        before = await _wait_for(handle, lambda p: p.phase == "training")
        record = Path(settings.data_dir) / "pods" / f"{pod_name(handle.id)}.json"
        os.kill(json.loads(record.read_text())["pid"], signal.SIGKILL)
        killed = time.monotonic()
        outcome = await asyncio.wait_for(handle.result(), timeout=RECOVERY_BOUND_S)
        took = time.monotonic() - killed
        after = await _progress(handle)
    finally:
        stop_process(process)
    assert after.pod_id != before.pod_id  # trained again, on a new pod
    _assert_nothing_left_and_the_file_is_the_recorded_one(settings, pg_dsn, lora_id, outcome, pods_expected=2)
    print(f"pod agent killed in training: ended {took:.1f} s after the kill")
