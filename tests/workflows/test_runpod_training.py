"""The whole training workflow through the RunPod provider, against the local RunPod-speaking
server (tests/fakes/runpod.py), whose "pods" run the real pod agent: a 429 storm, a GPU type
with no instances, a create whose answer comes after the client gave up, and the worker killed
with SIGKILL between create and ready — the pod is found again by name, not leaked and not
doubled — and the training completes, its pod gone. Then the sweeper, on the same provider."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from loraflow.compute.runpod import RunPodConfig, RunPodProvider
from loraflow.contracts.lora_training import TrainingOutcome, TrainLoraInput
from loraflow.contracts.maintenance import SweepOrphanPodsInput
from loraflow.contracts.names import train_workflow_id
from loraflow.devstack.embedded import stop_process
from loraflow.net import free_port
from loraflow.settings import Settings
from tests.fakes.runpod import FakeRunPod
from tests.fakes.server import serve
from tests.helpers.loras import QUICK_TRAINING_PARAMS, assert_every_phase_ran, new_lora, upload_images
from tests.helpers.worker_process import loaded_torch, start_worker

TASK_QUEUE = "loraflow-runpod-test"
KEY = "rp-test-key"


def _start_worker(
    settings: Settings, runpod: FakeRunPod, log: Path, metrics_port: int | None = None
) -> subprocess.Popen[bytes]:
    return start_worker(
        settings,
        TASK_QUEUE,
        log,
        **({"LORAFLOW_METRICS_PORT": str(metrics_port)} if metrics_port else {}),
        LORAFLOW_COMPUTE_PROVIDER="runpod",
        LORAFLOW_RUNPOD_API_KEY=KEY,
        LORAFLOW_RUNPOD_BASE_URL=runpod.url,
        LORAFLOW_RUNPOD_PROXY_URL=runpod.proxy_url,
        LORAFLOW_RUNPOD_GPU_TYPES="NVIDIA L40S,NVIDIA GeForce RTX 4090",
        LORAFLOW_POD_TOKEN_SECRET="test-pod-secret",
        LORAFLOW_RUNPOD_TIMEOUT_S="2",
    )


async def test_training_through_runpod_survives_a_storm_a_missing_gpu_and_a_crash(
    worker: Settings,  # the session worker is not used for this queue; its fixtures are
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    pg_dsn: str,
    tiny_model: Path,
    tmp_path: Path,
) -> None:
    runpod = FakeRunPod(api_key=KEY, workdir=tmp_path / "runpod", base_model_override=str(tiny_model))
    runpod.runtime_after_gets = 10**9  # pods stay RUNNING with a null runtime until we say
    runpod.no_instances = {"NVIDIA L40S"}
    runpod.failures = [(429, {"Retry-After": "1"})] * 3 + [(503, {})]
    runpod.lose_next_create = True  # RunPod makes the pod; its answer comes after the client gave up
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(settings, user_id, lora_id)
    log = tmp_path / "worker.log"
    with serve(runpod.app()) as url:
        runpod.url = url
        process = _start_worker(settings, runpod, log)
        try:
            handle = await temporal_env.client.start_workflow(
                "TrainLoraWorkflow",
                TrainLoraInput(
                    lora_id=lora_id,
                    user_id=user_id,
                    image_keys=keys,
                    params=QUICK_TRAINING_PARAMS,
                    validation_steps=10,
                ),
                id=train_workflow_id(lora_id),
                task_queue=TASK_QUEUE,
                result_type=TrainingOutcome,
            )
            # The pod id is recorded before the workflow waits for readiness.
            async with asyncio.timeout(120):
                while not (recorded := _pod_ids(pg_dsn, lora_id)):
                    await asyncio.sleep(0.2)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            runpod.runtime_after_gets = 0  # the image is pulled; the container runs
            metrics_port = free_port()
            process = _start_worker(settings, runpod, log, metrics_port)
            outcome = await asyncio.wait_for(handle.result(), timeout=600)
            # It trained and validated (on the pod) without ever loading torch, let alone a model.
            assert not loaded_torch(process)
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            # The sweeper, through the same provider: a pod no workflow knows is terminated.
            stray = (
                RunPodProvider(
                    RunPodConfig(api_key=KEY, image="x", token_secret="test-pod-secret", base_url=url)
                )
                .create("lf-lora-train-no-such-workflow")
                .handle
            )
            swept = await temporal_env.client.execute_workflow(
                "SweepOrphanPodsWorkflow", SweepOrphanPodsInput(3 * 3600.0), id=f"sweep-{lora_id}",
                task_queue=TASK_QUEUE, result_type=list[str],
            )  # fmt: skip
        finally:
            stop_process(process)
            runpod.close()

    assert outcome.validation is not None, log.read_text()[-3000:]
    assert_every_phase_ran(outcome)  # a 40-step LoRA: either verdict
    assert swept == [stray.pod_id] and runpod.pods[stray.pod_id].terminated
    del runpod.pods[stray.pod_id]
    assert len(runpod.pods) == 1  # one pod for the training, ever, despite the lost answer
    (pod,) = runpod.pods.values()
    assert recorded == [pod.id] and pod.name == f"lf-{train_workflow_id(lora_id)}"
    assert pod.gpu_type == "NVIDIA GeForce RTX 4090"  # the L40S had no instances
    assert pod.terminated  # cleaned up
    assert [m for m, path in runpod.requests if m == "DELETE"]
    assert outcome.cost_usd > 0  # pod seconds times RunPod's price
    with psycopg.connect(pg_dsn) as conn:
        cost = conn.execute("SELECT cost FROM job_costs WHERE lora_model_id = %s", [lora_id]).fetchone()
    assert cost is not None and float(cost[0]) == round(outcome.cost_usd, 4)

    # Prometheus: the SDK's metrics and loraflow's, from the worker that finished the training.
    samples = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#"))
    assert any(name.startswith("temporal_") for name in samples)
    ended = [v for k, v in samples.items() if k.startswith(f"loraflow_trainings_{outcome.status}")]
    assert ended and float(ended[0]) == 1
    cost_sum = [v for k, v in samples.items() if k.startswith("loraflow_training_cost_usd_sum")]
    assert cost_sum and float(cost_sum[0]) == pytest.approx(outcome.cost_usd)


def _pod_ids(pg_dsn: str, lora_id: str) -> list[str]:
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT runpod_pod_id FROM lora_training_jobs"
            " WHERE lora_model_id = %s AND runpod_pod_id IS NOT NULL",
            [lora_id],
        ).fetchall()
    return [r[0] for r in rows]
