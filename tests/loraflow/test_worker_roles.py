"""`loraflow worker` serves training; `loraflow worker --gpu` serves the keyframe path on its own
task queue: each polls its own queue and nothing else (seen from Temporal's side)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from loraflow.devstack.embedded import stop_process
from loraflow.settings import Settings
from tests.helpers.worker_process import start_worker


async def _pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    r = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    return {p.identity for p in r.pollers}


async def test_each_role_polls_its_own_task_queue(
    settings: Settings, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = temporal_env.client
    training, gpu = f"roles-train-{uuid.uuid4().hex[:6]}", f"roles-gpu-{uuid.uuid4().hex[:6]}"
    processes = {
        role: start_worker(settings, training, tmp_path / f"{role}.log", *flags, LORAFLOW_GPU_TASK_QUEUE=gpu)
        for role, flags in (("training", ()), ("gpu", ("--gpu",)))
    }
    try:
        async with asyncio.timeout(90):
            while True:
                seen = {
                    "training workflows": await _pollers(
                        client, training, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
                    ),
                    "training activities": await _pollers(
                        client, training, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
                    ),
                    "gpu activities": await _pollers(client, gpu, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
                }
                if all(seen.values()):
                    break
                for role, process in processes.items():
                    assert process.poll() is None, (tmp_path / f"{role}.log").read_text()[-2000:]
                await asyncio.sleep(0.2)
    finally:
        for process in processes.values():
            stop_process(process)
    pids = {role: str(p.pid) for role, p in processes.items()}
    # Temporal's default worker identity is "{pid}@{host}".
    assert {i.split("@")[0] for i in seen["training workflows"]} == {pids["training"]}
    assert {i.split("@")[0] for i in seen["training activities"]} == {pids["training"]}
    assert {i.split("@")[0] for i in seen["gpu activities"]} == {pids["gpu"]}
