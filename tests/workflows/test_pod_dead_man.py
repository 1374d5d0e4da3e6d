"""The pod watches itself: a worker is killed (SIGKILL) mid-training and never comes back, no
sweeper runs, and the pod — agent and trainer — ends itself once nobody has asked it anything for
LORAFLOW_AGENT_IDLE_S, instead of billing until someone notices."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import psutil
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from loraflow.compute import PodStatus
from loraflow.compute.local import LocalProvider
from loraflow.contracts.lora_training import TrainingProgress, TrainLoraInput
from loraflow.contracts.names import pod_name, train_workflow_id
from loraflow.devstack.embedded import stop_process
from loraflow.settings import Settings
from tests.helpers.loras import new_lora, upload_images
from tests.helpers.worker_process import start_worker
from training_scripts.tiny_model import TINY_TRAINING_PARAMS

TASK_QUEUE = "loraflow-dead-man-test"


def _pod_processes(workdir: Path) -> list[psutil.Process]:
    """The pod's agent and its trainer (both name the pod's folder on their command line)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and str(workdir) in " ".join(
            process.info["cmdline"] or []
        ):
            found.append(process)
    return found


async def test_a_pod_whose_worker_never_returns_ends_itself(
    worker: Settings,  # the session's pod cleanup; this test runs its own worker process
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    tmp_path: Path,
) -> None:
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(settings, user_id, lora_id)
    process = start_worker(settings, TASK_QUEUE, tmp_path / "worker.log", LORAFLOW_AGENT_IDLE_S="4")
    handle = await temporal_env.client.start_workflow(
        "TrainLoraWorkflow",
        TrainLoraInput(lora_id=lora_id, user_id=user_id, image_keys=keys, params=TINY_TRAINING_PARAMS),
        id=train_workflow_id(lora_id),
        task_queue=TASK_QUEUE,
    )
    provider = LocalProvider(Path(settings.data_dir), base_model="unused")
    try:
        async with asyncio.timeout(300):
            while True:
                progress = await handle.query("progress", result_type=TrainingProgress)
                if progress.phase == "training" and progress.step > 0:
                    break
                await asyncio.sleep(0.2)
        workdir = Path(settings.data_dir) / "pods" / pod_name(train_workflow_id(lora_id))
        assert len(_pod_processes(workdir)) == 2  # the agent and its trainer, training
        process.send_signal(signal.SIGKILL)  # the worker is gone, and no worker will come back
        process.wait(10)

        async with asyncio.timeout(90):
            while provider.describe(progress.pod_id).status != PodStatus.terminated:
                await asyncio.sleep(0.2)
            while _pod_processes(workdir):  # the trainer went with its agent
                await asyncio.sleep(0.2)
        assert "no request from the workflow" in (workdir / "ended.json").read_text()
        assert provider.list_pods() == [] or all(
            p.handle.pod_id != progress.pod_id for p in provider.list_pods()
        )
    finally:
        stop_process(process)
        await handle.terminate("test over")
