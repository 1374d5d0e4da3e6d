"""TrainLoraWorkflow's branching, with scripted activities (tests/helpers/scripted_activities.py)
on the real Temporal dev server: each scenario runs in about a second. The end-to-end tests beside
this one keep the real path (pod agent, training, storage, validation) covered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from loraflow.contracts.lora_training import (
    CleanupPodInput,
    PodHandle,
    TrainingOutcome,
    TrainingProgress,
    TrainLoraInput,
)
from loraflow.contracts.names import pod_name, train_workflow_id
from loraflow.contracts.status import TrainingStatus
from tests.helpers.histories import record_history
from tests.helpers.scripted_activities import ScriptedActivities, TrainingScript
from workflows.lora_training import MAX_POD_ATTEMPTS, TrainLoraWorkflow

IMAGES = ["u/l/0.png", "u/l/1.png", "u/l/2.png"]


@asynccontextmanager
async def _scripted_worker(client: Client, scripted: ScriptedActivities) -> AsyncIterator[str]:
    task_queue = f"scripted-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=task_queue, workflows=[TrainLoraWorkflow], activities=scripted.activities()
    ):
        yield task_queue


async def _start(
    client: Client, task_queue: str, **overrides: object
) -> WorkflowHandle[TrainLoraWorkflow, TrainingOutcome]:
    lora_id = str(uuid.uuid4())
    request = TrainLoraInput(
        lora_id=lora_id, user_id=str(uuid.uuid4()), image_keys=IMAGES, params={"steps": 4}
    )
    for name, value in overrides.items():
        setattr(request, name, value)
    return await client.start_workflow(
        TrainLoraWorkflow.run, request, id=train_workflow_id(lora_id), task_queue=task_queue
    )


async def test_a_training_ends_its_pod_before_storing_and_completes(
    temporal_env: WorkflowEnvironment,
) -> None:
    scripted = ScriptedActivities()
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue)
        outcome = await handle.result()
    assert outcome.status == TrainingStatus.COMPLETED and outcome.error is None
    names = scripted.names()
    assert names.index("cleanup_pod") < names.index("store_lora")  # the pod bills while it exists
    assert names.count("validate_image") == 3 and names.count("cleanup_pod") == 1
    assert outcome.pod_seconds == 120.0 and outcome.cost_usd == round(120 / 3600 * 0.69, 4)
    assert scripted.inputs("record_outcome")[0].outcome.status == TrainingStatus.COMPLETED


@pytest.mark.records_history
async def test_two_of_three_validation_images_pass_one_does_not(temporal_env: WorkflowEnvironment) -> None:
    passing = ScriptedActivities(TrainingScript(shows_character=(True, False, True)))
    failing = ScriptedActivities(TrainingScript(shows_character=(False, False, True)))
    async with _scripted_worker(temporal_env.client, passing) as queue:
        assert (await (await _start(temporal_env.client, queue)).result()).status == TrainingStatus.COMPLETED
    async with _scripted_worker(temporal_env.client, failing) as queue:
        handle = await _start(temporal_env.client, queue)
        outcome = await handle.result()
    assert outcome.status == TrainingStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith(
        "validation failed: 1 of 3 validation images show the character (at least 2 must)"
    )
    assert outcome.stored is not None  # stored, but never entered into the library as completed
    await record_history(handle, "train_validation_failed")


@pytest.mark.records_history
async def test_the_cost_cap_stops_training_and_cleans_up(temporal_env: WorkflowEnvironment) -> None:
    # A pod at $10/h that has run an hour has cost $10: past the $5 cap at the first check.
    scripted = ScriptedActivities(TrainingScript(pod_price_per_hour=10.0, pod_age_s=3600, polls_forever=True))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue, cost_cap_usd=5.0)
        outcome = await handle.result()
    assert outcome.status == TrainingStatus.FAILED
    assert outcome.error == (
        "stopped: this training's pod cost reached its $5.00 cap; try fewer steps or a lower resolution"
    )
    assert "poll_training" not in scripted.names() and scripted.names().count("cleanup_pod") == 1
    await record_history(handle, "train_cost_cap")


async def test_no_gpu_falls_back_to_replicate_only_when_allowed(temporal_env: WorkflowEnvironment) -> None:
    allowed = ScriptedActivities(TrainingScript(gpus_exhausted=True))
    async with _scripted_worker(temporal_env.client, allowed) as queue:
        outcome = await (await _start(temporal_env.client, queue, replicate_fallback=True)).result()
    assert outcome.status == TrainingStatus.COMPLETED
    assert {"replicate_start", "replicate_download", "replicate_cancel"} <= set(allowed.names())
    assert "cleanup_pod" not in allowed.names()

    refused = ScriptedActivities(TrainingScript(gpus_exhausted=True))
    async with _scripted_worker(temporal_env.client, refused) as queue:
        outcome = await (await _start(temporal_env.client, queue)).result()
    assert outcome.status == TrainingStatus.FAILED
    assert outcome.error == "no GPU available in any configured type"
    assert "replicate_start" not in refused.names()


async def test_a_failed_training_says_why_and_cleans_up(temporal_env: WorkflowEnvironment) -> None:
    scripted = ScriptedActivities(TrainingScript(training_fails="CUDA out of memory"))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        outcome = await (await _start(temporal_env.client, queue)).result()
    assert (outcome.status, outcome.error) == (TrainingStatus.FAILED, "training failed: CUDA out of memory")
    assert scripted.names().count("cleanup_pod") == 1 and "store_lora" not in scripted.names()


async def test_cancel_while_training_cleans_up_the_pod(temporal_env: WorkflowEnvironment) -> None:
    scripted = ScriptedActivities(TrainingScript(polls_forever=True))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue)
        await scripted.training_started.wait()
        await handle.cancel()
        outcome = await handle.result()
        progress = await handle.query(TrainLoraWorkflow.progress)
    assert (outcome.status, outcome.error) == (TrainingStatus.FAILED, "cancelled")
    created: PodHandle = scripted.inputs("wait_pod_ready")[0].pod
    assert [c.pod.pod_id for c in scripted.inputs("cleanup_pod")] == [created.pod_id]
    assert isinstance(progress, TrainingProgress) and progress.phase == "failed"


@pytest.mark.records_history
async def test_cancel_while_the_pod_is_being_created_still_ends_that_pod(
    temporal_env: WorkflowEnvironment,
) -> None:
    """The create call cannot be taken back: the workflow lets it finish, then ends the pod it made
    (and bills it), instead of leaving it to the orphan sweeper."""
    release = asyncio.Event()
    scripted = ScriptedActivities(TrainingScript(hold_create=release))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue)
        await scripted.create_started.wait()
        await handle.cancel()
        release.set()
        outcome = await handle.result()
    assert (outcome.status, outcome.error) == (TrainingStatus.FAILED, "cancelled")
    cleaned: list[CleanupPodInput] = scripted.inputs("cleanup_pod")
    assert [c.pod.name for c in cleaned] == [pod_name(handle.id)]
    assert outcome.pod_seconds == 120.0 and outcome.cost_usd > 0
    assert "wait_pod_ready" not in scripted.names()
    await record_history(handle, "train_cancelled_while_creating_pod")


@pytest.mark.records_history
async def test_a_lost_pod_is_replaced_and_the_training_completes(temporal_env: WorkflowEnvironment) -> None:
    scripted = ScriptedActivities(TrainingScript(pods_lost=1))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue)
        outcome = await handle.result()
    assert outcome.status == TrainingStatus.COMPLETED, outcome.error
    created = [c.attempt for c in scripted.inputs("create_pod")]
    cleaned = [c.pod.name for c in scripted.inputs("cleanup_pod")]
    assert created == [1, 2]
    assert cleaned == [pod_name(handle.id, 1), pod_name(handle.id, 2)]  # the lost one too
    assert outcome.pod_seconds == 240.0  # both pods billed
    await record_history(handle, "train_pod_lost_retrained")


async def test_pods_lost_again_and_again_fail_the_training_with_the_reason(
    temporal_env: WorkflowEnvironment,
) -> None:
    scripted = ScriptedActivities(TrainingScript(pods_lost=99))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        outcome = await (await _start(temporal_env.client, queue)).result()
    assert outcome.status == TrainingStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("the training machine was lost")
    assert len(scripted.inputs("create_pod")) == MAX_POD_ATTEMPTS
    assert len(scripted.inputs("cleanup_pod")) == MAX_POD_ATTEMPTS
