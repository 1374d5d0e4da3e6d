"""The orphan sweeper: a pod whose workflow was terminated from the Temporal CLI (so no cleanup
ran), a pod no workflow knows, and a pod past the maximum training time are terminated; the pod
of a running training is left alone."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from psycopg_pool import AsyncConnectionPool
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from loraflow.compute.local import LocalProvider
from loraflow.contracts.lora_training import TrainLoraInput
from loraflow.contracts.maintenance import SweepOrphanPodsInput
from loraflow.contracts.names import pod_name, train_workflow_id
from loraflow.devstack import embedded
from loraflow.settings import Settings
from loraflow.temporal import training_client as trainings
from tests.helpers.loras import new_lora, upload_images
from training_scripts.tiny_model import TINY_TRAINING_PARAMS


async def _sweep(env: WorkflowEnvironment, settings: Settings, max_training_s: float, tag: str) -> list[str]:
    return await env.client.execute_workflow(
        "SweepOrphanPodsWorkflow",
        SweepOrphanPodsInput(max_training_s),
        id=f"sweep-test-{tag}",
        task_queue=settings.task_queue,
        result_type=list[str],
    )


async def test_sweeper_terminates_orphans_and_spares_live_trainings(
    worker: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, temporal_address: str
) -> None:
    provider = LocalProvider(Path(worker.data_dir), base_model="unused")
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(worker, user_id, lora_id, n=3)
    workflow_id = train_workflow_id(lora_id)
    await temporal_env.client.start_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(lora_id=lora_id, user_id=user_id, image_keys=keys, params=TINY_TRAINING_PARAMS),
        id=workflow_id,
        task_queue=worker.task_queue,
    )
    deadline = time.monotonic() + 120
    while not any(p.handle.name == pod_name(workflow_id) for p in provider.list_pods()):
        assert time.monotonic() < deadline, "the training never created its pod"
        await asyncio.sleep(0.2)  # the worker runs on this event loop: never block it
    (training_pod,) = [p.handle for p in provider.list_pods() if p.handle.name == pod_name(workflow_id)]

    # A pod no workflow knows about (say, left by a deleted namespace).
    stray = provider.create("lf-lora-train-no-such-workflow").handle

    # The running training's pod is not touched.
    assert await _sweep(temporal_env, worker, 3 * 3600, f"{lora_id}-1") == [stray.pod_id]
    assert [p.handle.pod_id for p in provider.list_pods()] == [training_pod.pod_id]

    # Terminated from the CLI: the workflow ends without its cleanup, and its pod is orphaned.
    subprocess.run(
        [embedded.temporal_cli(), "workflow", "terminate", "--workflow-id", workflow_id,
         "--address", temporal_address, "--reason", "ops test"],
        check=True, capture_output=True,
    )  # fmt: skip
    description = await temporal_env.client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.TERMINATED
    assert [p.handle.pod_id for p in provider.list_pods()] == [training_pod.pod_id]
    assert await _sweep(temporal_env, worker, 3 * 3600, f"{lora_id}-2") == [training_pod.pod_id]
    assert provider.list_pods() == []


async def test_a_pod_past_the_maximum_time_is_terminated(
    worker: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool
) -> None:
    provider = LocalProvider(Path(worker.data_dir), base_model="unused")
    user_id, lora_id = await new_lora(pool)
    # A live workflow (waiting for images) with a pod named after it.
    await trainings.start_training(
        temporal_env.client, worker, lora_id=lora_id, user_id=user_id, image_keys=[], params={}
    )
    pod = provider.create(pod_name(train_workflow_id(lora_id))).handle
    assert await _sweep(temporal_env, worker, 3 * 3600, f"{lora_id}-a") == []
    assert await _sweep(temporal_env, worker, 0.001, f"{lora_id}-b") == [pod.pod_id]
    assert provider.list_pods() == []
    await trainings.cancel_training(temporal_env.client, lora_id)
