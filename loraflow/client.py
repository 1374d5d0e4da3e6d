"""The small typed client the video platform imports.

From the upload route (ordinary async code, a Temporal ``Client`` at hand)::

    jobs = LoraJobs(client)
    lora_id = await jobs.request_lora(job_id=..., user_id=..., lora_name="Cyberpunk Girl",
                                      notify_workflow_id=orchestrator_workflow_id)

From the orchestrator's workflow code (deterministic; these only signal and run activities)::

    await send_character_references(job_id, reference_images)   # after the Reference Generator
    statuses = await job_lora_status(job_id)                     # once, at video-generation start
    plan = await plan_clip(ClipRequest(...))                     # per clip

and handle the signals loraflow sends back: ``lora_characters`` (a ``JobLoraReport``: which
characters got a LoRA, which were skipped and why) and ``lora_finished`` (a ``LoraFinished``).

Why these primitives: the upload route needs the new LoRA's id (or the reason there is none)
before it answers, so ``request_lora`` is **update-with-start**: one round trip that starts the
job's workflow if needed and waits for its answer, and a retried request lands on the same
workflow and gets the same id. The references come from inside the orchestrator's workflow,
where the tool is a **signal** to an external workflow: durable, fire-and-forget, and the job
workflow (started at upload time) is already there to receive it.

Public names. The platform's code reaches loraflow through these names, never through loraflow's
classes (its workers do not import ``workflows/`` or ``activities/``), so they are part of the
contract and never change; the helpers below are the supported way to use them:

- workflow ``JobLorasWorkflow`` (id ``lora-job-{job_id}``, ``contracts.names.job_workflow_id``),
  its update ``request_lora`` (→ the LoRA id) and its signal ``character_references``
  (``list[ReferenceImage]``);
- activity ``job_lora_status`` (``JobLoraStatusRequest`` → ``list[JobLoraStatus]``) and activity
  ``plan_clip`` (``ClipRequest`` → ``ClipPlan``), run on loraflow's task queues (``plan_clip``
  on the GPU worker's, ``DEFAULT_GPU_TASK_QUEUE``: it may generate a keyframe);
- the signals loraflow sends to ``notify_workflow_id``: ``lora_characters`` (``JobLoraReport``)
  and ``lora_finished`` (``LoraFinished``).

Inside loraflow, workflows call activities and child workflows by reference, not by name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from loraflow.contracts.errors import ErrorType
from loraflow.contracts.jobs import JobLoraRequest, JobLoraStatus, JobLoraStatusRequest, ReferenceImage
from loraflow.contracts.limits import PENDING_IMAGES_WAIT_S
from loraflow.contracts.names import job_workflow_id
from loraflow.contracts.status import TrainingStatus
from loraflow.domain.clips import ClipPlan, ClipRequest
from loraflow.errors import BudgetExhausted, DuplicateName, InputRejected, MonthlyLimitReached, Refused

__all__ = [
    "DEFAULT_GPU_TASK_QUEUE",
    "DEFAULT_TASK_QUEUE",
    "BudgetExhausted",
    "ClipPlan",
    "ClipRequest",
    "DuplicateName",
    "InputRejected",
    "JobLoraRequest",
    "JobLoraStatus",
    "JobLoraStatusRequest",
    "LoraJobs",
    "MonthlyLimitReached",
    "ReferenceImage",
    "Refused",
    "TrainingStatus",
    "job_lora_status",
    "plan_clip",
    "send_character_references",
]

DEFAULT_TASK_QUEUE = "loraflow-training"
#: ``plan_clip`` runs here: the keyframe path's queue (``loraflow worker --gpu``).
DEFAULT_GPU_TASK_QUEUE = "loraflow-gpu"


def _refusal(cause: ApplicationError, lora_name: str) -> Refused:
    """The job workflow's refusal, as the exception of loraflow's tree it stands for."""
    if cause.type == ErrorType.DUPLICATE_NAME:
        return DuplicateName(lora_name, cause.message)
    if cause.type == ErrorType.MONTHLY_LIMIT_REACHED:
        return MonthlyLimitReached(cause.message)
    if cause.type == ErrorType.BUDGET_EXHAUSTED:
        return BudgetExhausted(cause.message)
    return Refused(cause.message, code=cause.type)


class LoraJobs:
    def __init__(self, client: Client, *, task_queue: str = DEFAULT_TASK_QUEUE) -> None:
        self._client = client
        self._task_queue = task_queue

    async def request_lora(
        self,
        *,
        job_id: str,
        user_id: str,
        lora_name: str,
        notify_workflow_id: str | None = None,
        training_params: dict[str, object] | None = None,
        image_wait: timedelta = timedelta(seconds=PENDING_IMAGES_WAIT_S),
    ) -> str:
        """Create (once) the job's pending LoRA named ``lora_name`` and return its id."""
        if not lora_name.strip() or len(lora_name) > 255:
            raise InputRejected("lora_name must be 1-255 characters")
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            "JobLorasWorkflow",
            JobLoraRequest(
                job_id=job_id,
                user_id=user_id,
                lora_name=lora_name.strip(),
                notify_workflow_id=notify_workflow_id,
                params=dict(training_params or {}),
                image_wait_s=image_wait.total_seconds(),
            ),
            id=job_workflow_id(job_id),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            return await self._client.execute_update_with_start_workflow(
                "request_lora", start_workflow_operation=start, result_type=str
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                raise _refusal(cause, lora_name.strip()) from exc
            raise

    async def send_character_references(self, job_id: str, references: list[ReferenceImage]) -> None:
        """The same signal as the workflow-side helper, for code outside a workflow."""
        await self._client.get_workflow_handle(job_workflow_id(job_id)).signal(
            "character_references", references
        )


# -- for the orchestrator's workflow code ------------------------------------------------


async def send_character_references(job_id: str, references: list[ReferenceImage]) -> None:
    await workflow.get_external_workflow_handle(job_workflow_id(job_id)).signal(
        "character_references", references
    )


async def job_lora_status(job_id: str, *, task_queue: str = DEFAULT_TASK_QUEUE) -> list[JobLoraStatus]:
    return await workflow.execute_activity(
        "job_lora_status",
        JobLoraStatusRequest(job_id),
        task_queue=task_queue,
        result_type=list[JobLoraStatus],
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_attempts=5),
    )


async def plan_clip(request: ClipRequest, *, task_queue: str = DEFAULT_GPU_TASK_QUEUE) -> ClipPlan:
    return await workflow.execute_activity(
        "plan_clip",
        request,
        task_queue=task_queue,
        result_type=ClipPlan,
        start_to_close_timeout=timedelta(minutes=10),
        # The activity beats while it plans (a keyframe on the GPU can take a while): a worker
        # lost meanwhile is noticed in seconds, not at the 10 minutes.
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=5),
    )
