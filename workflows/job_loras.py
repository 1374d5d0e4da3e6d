"""JobLorasWorkflow (id ``lora-job-{job_id}``, ``names.job_workflow_id``): the LoRAs a video job
asked for.

1. Started by the upload route through ``loraflow.client.LoraJobs.request_lora``
   (update-with-start): it creates the job's pending LoRA and answers its id, or the reason it
   cannot (name taken, monthly limit).
2. Waits for the orchestrator's ``character_references`` signal (the Reference Generator's
   output), durably, for at most ``image_wait_s``.
3. Groups the images by character: each character with MIN_IMAGES or more gets a LoRA (the
   first takes the pending record and the user's name, the others a derived name) and a child
   TrainLoraWorkflow, which signals ``lora_finished`` to the orchestrator when it ends; a
   character with fewer is skipped with a warning. The grouping is reported back to the
   orchestrator with the ``lora_characters`` signal.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.lora_training import TrainLoraWorkflow

with workflow.unsafe.imports_passed_through():
    from activities.jobs import JobActivities
    from activities.records import RecordActivities
    from loraflow.contracts.errors import ErrorType
    from loraflow.contracts.jobs import (
        CharacterLora,
        CreateJobLoraInput,
        FetchReferencesInput,
        JobDataset,
        JobLoraReport,
        JobLoraRequest,
        LoraFinished,
        ReferenceImage,
        SkippedCharacter,
        character_lora_name,
        group_references,
    )
    from loraflow.contracts.limits import MIN_IMAGES
    from loraflow.contracts.lora_training import StatusChange, TrainLoraInput
    from loraflow.contracts.names import train_workflow_id
    from loraflow.contracts.status import TrainingStatus

_QUICK = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
)
_PRIMARY = "primary"  # the slot of the LoRA the upload route asked for


@workflow.defn(name="JobLorasWorkflow")
class JobLorasWorkflow:
    def __init__(self) -> None:
        self._primary: CharacterLora | None = None
        self._refused: ApplicationError | None = None
        self._references: list[ReferenceImage] | None = None
        self._report: JobLoraReport | None = None

    @workflow.update(name="request_lora")
    async def request_lora(self) -> str:
        """The job's pending LoRA id (the same on every retry of the upload route)."""
        await workflow.wait_condition(lambda: self._primary is not None or self._refused is not None)
        if self._refused is not None:
            raise self._refused
        assert self._primary is not None
        return self._primary.lora_id

    @workflow.signal(name="character_references")
    def character_references(self, references: list[ReferenceImage]) -> None:
        if self._references is None:  # the first delivery wins; a repeat changes nothing
            self._references = list(references)

    @workflow.query(name="report")
    def report(self) -> JobLoraReport | None:
        return self._report

    @workflow.run
    async def run(self, request: JobLoraRequest) -> JobLoraReport:
        report = JobLoraReport(job_id=request.job_id)
        try:
            self._primary = await self._create(request, request.lora_name, _PRIMARY)
        except ActivityError as exc:
            cause = exc.cause
            self._refused = ApplicationError(
                getattr(cause, "message", str(exc)),
                type=getattr(cause, "type", None) or ErrorType.REFUSED,
                non_retryable=True,
            )
            return report

        try:
            await workflow.wait_condition(
                lambda: self._references is not None, timeout=timedelta(seconds=request.image_wait_s)
            )
        except TimeoutError:
            await self._fail(request, self._primary, "the job's character reference images never arrived")
            self._report = report
            return report

        assert self._references is not None
        eligible = _eligible(request, self._references, report)
        if not eligible:
            await self._fail(
                request, self._primary, f"no character had at least {MIN_IMAGES} reference images"
            )
        for index, (character_id, urls) in enumerate(eligible):
            await self._train_character(request, index, character_id, urls, report)

        self._report = report
        await _signal(request.notify_workflow_id, "lora_characters", report)
        return report

    async def _train_character(
        self, request: JobLoraRequest, index: int, character_id: str, urls: list[str], report: JobLoraReport
    ) -> None:
        """One character's LoRA: its record (the first character takes the primary one), its
        dataset, and a child TrainLoraWorkflow. A character that cannot have one is skipped."""
        if index == 0:
            assert self._primary is not None
            lora = self._primary
        else:
            name = character_lora_name(request.lora_name, character_id, index)
            try:
                lora = await self._create(request, name, character_id)
            except ActivityError as exc:
                report.skipped.append(SkippedCharacter(character_id, len(urls), _cause_message(exc)))
                return
        lora = CharacterLora(character_id, lora.lora_id, lora.name)
        try:
            dataset = await workflow.execute_activity_method(
                JobActivities.fetch_references,
                FetchReferencesInput(request.user_id, lora.lora_id, character_id, urls),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=_QUICK,
            )
        except ActivityError as exc:
            reason = _cause_message(exc)
            await self._fail(request, lora, reason)
            report.skipped.append(SkippedCharacter(character_id, len(urls), reason))
            return
        await self._start_training(request, lora, dataset)
        report.trained.append(lora)

    async def _start_training(
        self, request: JobLoraRequest, lora: CharacterLora, dataset: JobDataset
    ) -> None:
        await workflow.start_child_workflow(
            TrainLoraWorkflow.run,
            TrainLoraInput(
                lora_id=lora.lora_id,
                user_id=request.user_id,
                image_keys=dataset.keys,
                params=dataset.params,
                cost_cap_usd=dataset.cost_cap_usd,
                max_training_s=dataset.max_training_s,
                replicate_fallback=dataset.replicate_fallback,
                validation_steps=dataset.validation_steps,
                notify_workflow_id=request.notify_workflow_id,
                character_id=lora.character_id,
                job_id=request.job_id,
            ),
            id=train_workflow_id(lora.lora_id),
            # The training outlives this workflow: it reports to the orchestrator itself.
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )

    async def _create(self, request: JobLoraRequest, name: str, slot: str) -> CharacterLora:
        return await workflow.execute_activity_method(
            JobActivities.create_job_lora,
            CreateJobLoraInput(request.job_id, request.user_id, name, slot, request.params),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=_QUICK,
        )

    async def _fail(self, request: JobLoraRequest, lora: CharacterLora | None, reason: str) -> None:
        """A job LoRA that will not train: failed with the reason, and the orchestrator told."""
        if lora is None:
            return
        await workflow.execute_activity_method(
            RecordActivities.record_status,
            StatusChange(lora.lora_id, TrainingStatus.FAILED, reason),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
        )
        await _signal(
            request.notify_workflow_id,
            "lora_finished",
            LoraFinished(lora.lora_id, TrainingStatus.FAILED, reason, lora.character_id, request.job_id),
        )


def _eligible(
    request: JobLoraRequest, references: list[ReferenceImage], report: JobLoraReport
) -> list[tuple[str, list[str]]]:
    """The characters with enough images, in order; the others go to the report as skipped."""
    eligible = []
    for character_id, urls in group_references(references):
        if len(urls) < MIN_IMAGES:
            reason = (
                f"character {character_id} has {len(urls)} reference image(s); "
                f"a LoRA needs at least {MIN_IMAGES}"
            )
            workflow.logger.warning("character skipped: %s", reason, extra={"job_id": request.job_id})
            report.skipped.append(SkippedCharacter(character_id, len(urls), reason))
        else:
            eligible.append((character_id, urls))
    return eligible


def _cause_message(exc: ActivityError) -> str:
    return getattr(exc.cause, "message", None) or str(exc)


async def _signal(workflow_id: str | None, name: str, payload: object) -> None:
    """Tell the orchestrator; an orchestrator that has gone away must not fail the job's LoRAs."""
    if not workflow_id:
        return
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(name, payload)
    except Exception as exc:  # logged; the LoRAs are recorded either way
        workflow.logger.warning("could not signal %s to %s: %s", name, workflow_id, exc)
