"""TrainLoraWorkflow's branching, with scripted activities (tests/helpers/scripted_activities.py)
on the real Temporal dev server: each scenario runs in about a second. The end-to-end tests beside
this one keep the real path (pod agent, training, storage, validation) covered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from loraflow.contracts.lora_training import (
    CleanupPodInput,
    EmailDelivery,
    OutcomeEmail,
    PodHandle,
    TrainingOutcome,
    TrainingProgress,
    TrainLoraInput,
)
from loraflow.contracts.names import FINAL_CHECKPOINT, creator_email_workflow_id, pod_name, train_workflow_id
from loraflow.contracts.status import TrainingStatus
from tests.helpers.histories import record_history
from tests.helpers.scripted_activities import CHECKPOINTS, ScriptedActivities, TrainingScript
from workflows.creator_email import CreatorEmailWorkflow
from workflows.lora_training import DOWNLOAD_LIMIT, MAX_POD_ATTEMPTS, TrainLoraWorkflow

IMAGES = ["u/l/0.png", "u/l/1.png", "u/l/2.png"]


@asynccontextmanager
async def _scripted_worker(client: Client, scripted: ScriptedActivities) -> AsyncIterator[str]:
    task_queue = f"scripted-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[TrainLoraWorkflow, CreatorEmailWorkflow],
        activities=scripted.activities(),
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
        TrainLoraWorkflow.run, request, id=train_workflow_id(request.lora_id), task_queue=task_queue
    )


async def _commands(handle: WorkflowHandle[TrainLoraWorkflow, TrainingOutcome]) -> list[str]:
    """What the workflow did, in order, as its history's event kinds (e.g.
    ``start_child_workflow_execution_initiated``, ``activity_task_scheduled``)."""
    return [
        str(event.WhichOneof("attributes")).removesuffix("_event_attributes")
        for event in (await handle.fetch_history()).events
    ]


async def test_a_training_ends_its_pod_before_storing_and_completes(
    temporal_env: WorkflowEnvironment,
) -> None:
    scripted = ScriptedActivities()
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue)
        outcome = await handle.result()
        lora_id = outcome.lora_id
        email = temporal_env.client.get_workflow_handle_for(
            CreatorEmailWorkflow.run, creator_email_workflow_id(lora_id, TrainingStatus.COMPLETED)
        )
        delivery = await email.result()
    assert outcome.status == TrainingStatus.COMPLETED and outcome.error is None
    names = scripted.names()
    assert names.index("cleanup_pod") < names.index("store_lora")  # the pod bills while it exists
    # Validated on the pod, while it is still there, before it is ended; never in the worker.
    assert names.count("validate_on_pod") == 3 and "validate_image" not in names
    last_validation = max(i for i, name in enumerate(names) if name == "validate_on_pod")
    assert last_validation < names.index("download_artifact") < names.index("cleanup_pod")
    assert names.count("cleanup_pod") == 1
    assert outcome.pod_seconds == 120.0 and outcome.cost_usd == round(120 / 3600 * 0.69, 4)
    assert scripted.inputs("record_outcome")[0].outcome.status == TrainingStatus.COMPLETED
    # The creator's e-mail: its own workflow, started before the webhook and never waited for.
    assert delivery == EmailDelivery(sent=True)
    assert scripted.inputs("send_outcome_email") == [OutcomeEmail(lora_id, TrainingStatus.COMPLETED)]
    commands = await _commands(handle)
    assert commands.count("start_child_workflow_execution_initiated") == 1
    webhook = max(i for i, kind in enumerate(commands) if kind == "activity_task_scheduled")  # the last
    assert commands.index("start_child_workflow_execution_initiated") < webhook


#: A worker killed mid-activity must not hold a training for more than a minute: each activity it
#: can lose is noticed (its heartbeat or start-to-close timeout) within this, then retried.
LOST_ACTIVITY_NOTICED_WITHIN = timedelta(seconds=30)


async def test_every_activity_a_killed_worker_can_lose_is_noticed_within_half_a_minute(
    temporal_env: WorkflowEnvironment,
) -> None:
    """From the histories of a training on a pod and one on Replicate: no activity waits out a
    long start-to-close timeout (run_training and record_outcome took 60 s, replicate_start 10
    minutes) before it is retried; the kill tests measure the real recovery per phase."""
    noticed_after: dict[str, timedelta] = {}
    given_up_after: dict[str, timedelta] = {}  # schedule-to-close: over every attempt
    for script, overrides in (
        (TrainingScript(), {}),
        (TrainingScript(gpus_exhausted=True), {"replicate_fallback": True}),
    ):
        async with _scripted_worker(temporal_env.client, ScriptedActivities(script)) as queue:
            handle = await _start(temporal_env.client, queue, **overrides)
            assert (await handle.result()).status == TrainingStatus.COMPLETED
        for event in (await handle.fetch_history()).events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                scheduled = event.activity_task_scheduled_event_attributes
                timeouts = [scheduled.heartbeat_timeout, scheduled.start_to_close_timeout]
                noticed_after[scheduled.activity_type.name] = min(
                    t.ToTimedelta() for t in timeouts if t.ToTimedelta() > timedelta(0)
                )
                given_up_after[scheduled.activity_type.name] = (
                    scheduled.schedule_to_close_timeout.ToTimedelta()
                )
    every_phase = {"prepare_dataset", "create_pod", "wait_pod_ready", "upload_images", "run_training",
                   "poll_training", "validate_on_pod", "download_artifact", "cleanup_pod", "store_lora",
                   "record_outcome", "replicate_start", "replicate_poll", "validate_on_replicate",
                   "replicate_download", "replicate_cancel"}  # fmt: skip
    assert every_phase <= set(noticed_after)
    slow = {name: after for name, after in noticed_after.items() if after > LOST_ACTIVITY_NOTICED_WITHIN}
    assert not slow, slow
    # Cleanup waits for the download while the pod bills: a download that trickles (beating all
    # along) is given up after DOWNLOAD_LIMIT over all its attempts, not 10 tries of 10 minutes.
    assert timedelta(0) < given_up_after["download_artifact"] <= DOWNLOAD_LIMIT == timedelta(minutes=10)


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
    assert outcome.error is not None and outcome.error.startswith("validation failed: at best 1 of 3")
    # Nothing that failed validation enters the library; the pod is ended all the same.
    assert "store_lora" not in failing.names() and "download_artifact" not in failing.names()
    assert failing.names().count("cleanup_pod") == 1 and outcome.stored is None
    assert outcome.validation is not None and outcome.validation.chosen is None
    await record_history(handle, "train_validation_failed")


@pytest.mark.records_history
async def test_the_checkpoint_most_like_the_character_is_stored(temporal_env: WorkflowEnvironment) -> None:
    """Later is not always better (a LoRA overfits): the middle checkpoint scores best here, so it
    is the one downloaded and stored; every checkpoint's verdict is recorded."""
    scores = {"step-000002": 0.7, "step-000003": 0.95, FINAL_CHECKPOINT: 0.8}
    scripted = ScriptedActivities(TrainingScript(checkpoint_scores=scores))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue)
        outcome = await handle.result()
        progress = await handle.query(TrainLoraWorkflow.progress)
    assert outcome.status == TrainingStatus.COMPLETED, outcome.error
    (download,) = scripted.inputs("download_artifact")
    assert (download.checkpoint, download.sha256) == ("step-000003", CHECKPOINTS[1].sha256)
    assert scripted.inputs("store_lora")[0].staged.sha256 == CHECKPOINTS[1].sha256
    report = outcome.validation
    assert report is not None and (report.chosen, report.chosen_step) == ("step-000003", 3)
    assert [(c.name, c.likeness, c.passed) for c in report.checkpoints] == [
        ("step-000002", 0.7, True), ("step-000003", 0.95, True), (FINAL_CHECKPOINT, 0.8, True),
    ]  # fmt: skip
    assert [s.image_url.endswith("-step-000003.png") for s in outcome.scores] == [True] * 3
    assert progress.validation is not None and "kept step 3" in progress.validation  # the Web UI's line
    await record_history(handle, "train_kept_middle_checkpoint")

    tied = ScriptedActivities(TrainingScript(checkpoint_scores=dict.fromkeys(scores, 0.9)))
    async with _scripted_worker(temporal_env.client, tied) as queue:
        outcome = await (await _start(temporal_env.client, queue)).result()
    assert outcome.validation is not None and outcome.validation.chosen == FINAL_CHECKPOINT  # ties: later


async def test_a_validation_that_times_out_fails_the_training_and_still_ends_the_pod(
    temporal_env: WorkflowEnvironment,
) -> None:
    scripted = ScriptedActivities(TrainingScript(validation_hangs=True))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        outcome = await (await _start(temporal_env.client, queue, validation_timeout_s=2.0)).result()
    assert outcome.status == TrainingStatus.FAILED
    assert outcome.error == (
        "validation timed out after 2 s; the LoRA was not stored. Create it again to retry."
    )
    assert scripted.names().count("cleanup_pod") == 1 and "store_lora" not in scripted.names()


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
    # Validated through Replicate's predictions of the trained version, before the download.
    names = allowed.names()
    assert names.count("validate_on_replicate") == 3 and "validate_image" not in names
    assert names.index("validate_on_replicate") < names.index("replicate_download")

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


async def test_the_creator_is_emailed_once_per_outcome_and_only_where_there_is_a_user(
    temporal_env: WorkflowEnvironment,
) -> None:
    client = temporal_env.client
    scripted = ScriptedActivities(TrainingScript(training_fails="CUDA out of memory"))
    lora_id = str(uuid.uuid4())
    async with _scripted_worker(client, scripted) as queue:
        # This outcome's e-mail went out before (a training reset to before its end, say).
        earlier = OutcomeEmail(lora_id, TrainingStatus.FAILED, "training failed: CUDA out of memory")
        await client.execute_workflow(
            CreatorEmailWorkflow.run,
            earlier,
            id=creator_email_workflow_id(lora_id, TrainingStatus.FAILED),
            task_queue=queue,
        )
        again = await _start(client, queue, lora_id=lora_id)
        no_user = await _start(client, queue, user_id=None)
        assert (await again.result()).status == TrainingStatus.FAILED
        assert (await no_user.result()).status == TrainingStatus.FAILED
    # The training found it started, sent none again and ended as usual; no user, no e-mail.
    assert scripted.inputs("send_outcome_email") == [earlier]
    assert "start_child_workflow_execution_failed" in await _commands(again)
    assert "start_child_workflow_execution_initiated" not in await _commands(no_user)
    assert scripted.names().count("send_webhook") == 2


async def test_cancel_while_training_cleans_up_the_pod(temporal_env: WorkflowEnvironment) -> None:
    scripted = ScriptedActivities(TrainingScript(polls_forever=True))
    async with _scripted_worker(temporal_env.client, scripted) as queue:
        handle = await _start(temporal_env.client, queue)
        await scripted.training_started.wait()
        await handle.cancel()
        outcome = await handle.result()
        progress = await handle.query(TrainLoraWorkflow.progress)
        # A cancelled workflow still starts the creator's e-mail, as it still sends the webhook.
        email = temporal_env.client.get_workflow_handle_for(
            CreatorEmailWorkflow.run, creator_email_workflow_id(outcome.lora_id, TrainingStatus.FAILED)
        )
        assert await email.result() == EmailDelivery(sent=True)
    assert (outcome.status, outcome.error) == (TrainingStatus.FAILED, "cancelled")
    created: PodHandle = scripted.inputs("wait_pod_ready")[0].pod
    assert [c.pod.pod_id for c in scripted.inputs("cleanup_pod")] == [created.pod_id]
    assert isinstance(progress, TrainingProgress) and progress.phase == "failed"
    assert [e.error for e in scripted.inputs("send_outcome_email")] == ["cancelled"]


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
