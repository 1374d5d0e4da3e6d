"""TrainLoraWorkflow (id ``lora-train-{lora_id}``, ``names.train_workflow_id``): one LoRA, from
images to a validated file.

prepare dataset → create pod → wait until its agent answers → upload images → run training →
poll (long polls: the end is seen at once) → validate on the pod (one activity per prompt, in
parallel: the base model's image and every checkpoint's, judged against the references) →
download the best checkpoint that passed → **cleanup, always** → store → record completed or
failed → tell the orchestrator (a job's LoRA), start the creator's e-mail (``CreatorEmailWorkflow``,
an abandoned child: never waited for) and POST the webhook. (Before ``validate-on-machine``:
download → cleanup → store → validate in the worker.)

Deterministic: no I/O here. Live progress is held in the workflow (query ``progress``), shown
as the workflow's current details, and mirrored to the database by the poll activity. The
``LoraStatus``/``LoraProgress`` search attributes change on transitions only: the status when it
changes, the progress when it crosses a 10 % step (it holds the step: 0, 10, ... 100).

What decides the commands lives here or in the input: the validation prompts travel in
``TrainLoraInput.validation_prompts``, the pass rule is ``limits.VALIDATION_IMAGES_NEEDED``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import TimeoutError as ActivityTimeout

from workflows.creator_email import CreatorEmailWorkflow

with workflow.unsafe.imports_passed_through():
    from activities.library import InWorkerValidationActivities, LibraryActivities
    from activities.notify import NotifyActivities
    from activities.pods import PodActivities
    from activities.records import RecordActivities
    from activities.replicate import ReplicateActivities
    from activities.validation import ValidationActivities
    from loraflow.contracts.errors import ErrorType
    from loraflow.contracts.jobs import LoraFinished
    from loraflow.contracts.limits import MIN_IMAGES, VALIDATION_IMAGES_NEEDED
    from loraflow.contracts.lora_training import (
        CheckpointInfo,
        CleanupPodInput,
        CreatePodInput,
        DownloadArtifactInput,
        MachineProgress,
        OutcomeEmail,
        PodHandle,
        PollTrainingInput,
        PrepareDatasetInput,
        PromptValidation,
        RecordOutcomeInput,
        ReplicateCancelInput,
        ReplicateDownloadInput,
        ReplicatePollInput,
        ReplicateStartInput,
        ReplicateTrainingHandle,
        RunTrainingInput,
        StagedArtifact,
        StatusChange,
        StoredLora,
        StoreLoraInput,
        TrainingOutcome,
        TrainingProgress,
        TrainLoraInput,
        UploadImagesInput,
        ValidateOnPodInput,
        ValidateOnReplicateInput,
        ValidationReport,
        ValidationRequest,
        ValidationScore,
        WaitPodReadyInput,
    )
    from loraflow.contracts.names import FINAL_CHECKPOINT, creator_email_workflow_id
    from loraflow.contracts.search_attributes import LORA_ID, LORA_PROGRESS, LORA_STATUS, LORA_USER_ID
    from loraflow.contracts.status import TrainingStatus
    from loraflow.domain.checkpoints import choose_checkpoint


_QUICK = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
)
#: Cleanup is retried until the provider confirms the pod is gone: a leaked pod bills forever.
_FOREVER = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
POLL_WAIT_S = 10.0
#: Every activity that can outlast a few seconds heartbeats (activities/heartbeats.py): a worker
#: killed mid-activity is noticed after this long, and the attempt retried on another worker.
HEARTBEAT = timedelta(seconds=15)
#: How long the download of the trained LoRA may take over all its attempts (an SDXL LoRA is
#: ~100-200 MB: minutes even over a slow link); then the training fails and the pod is ended.
DOWNLOAD_LIMIT = timedelta(minutes=10)
#: ``LoraProgress`` moves in steps of this many percent.
PROGRESS_STEP = 10

#: Patches (``workflow.patched``), oldest first. Each changed the commands this workflow issues;
#: a history recorded before it replays down the old branch (tests/workflows/test_replay.py).
#: A cancel during create_pod waits for the create and ends the pod it made (it used to leak).
PATCH_CREATE_POD_FINISHES_ON_CANCEL = "create-pod-finishes-on-cancel"
#: A pod lost mid-training is cleaned up and the training runs again on a new pod.
PATCH_RETRAIN_ON_LOST_POD = "retrain-on-lost-pod"
#: Validation runs on the machine that trained, before cleanup (the pod agent's /generate, or
#: Replicate predictions), over every checkpoint; the best that passes is what is stored.
PATCH_VALIDATE_ON_MACHINE = "validate-on-machine"
#: As it ends, the training starts CreatorEmailWorkflow (an abandoned child) that e-mails the
#: LoRA's creator the outcome; before it, only the orchestrator's signal and the webhook.
PATCH_EMAIL_ON_OUTCOME = "email-on-outcome"
#: How many pods one training may use when they keep getting lost.
MAX_POD_ATTEMPTS = 3
#: Each validation activity is tried this often within its ``validation_timeout_s``.
_VALIDATION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30), maximum_attempts=3
)

#: What trains: a pod (its agent does the work) or, as the fallback, a Replicate training.
Machine = PodHandle | ReplicateTrainingHandle


@workflow.defn(name="TrainLoraWorkflow")
class TrainLoraWorkflow:
    def __init__(self) -> None:
        self._progress = TrainingProgress()
        self._price = 0.0  # USD per pod-hour, known once a pod exists
        self._image_keys: list[str] = []
        self._frozen = False  # once training starts, the dataset no longer changes
        self._machine: Machine | None = None  # a pod or Replicate training that cleanup must end
        self._lost_pods_s = 0.0  # billed seconds of pods lost before the one that trains
        self._dataset: list[str] = []  # the prepared dataset: the references validation judges by
        self._validation: ValidationReport | None = None  # set where it ran on the machine
        # What the search attributes hold now: they are upserted only when these change.
        self._indexed_status = self._progress.status
        self._indexed_progress = self._progress.progress

    @workflow.query(name="progress")
    def progress(self) -> TrainingProgress:
        return self._progress

    @workflow.signal(name="add_images")
    def add_images(self, image_keys: list[str]) -> None:
        """All the LoRA's image keys so far (the API sends the whole list: a repeated or
        reordered signal cannot lose or double an image)."""
        if not self._frozen:
            self._image_keys = list(dict.fromkeys([*self._image_keys, *image_keys]))

    @workflow.run
    async def run(self, request: TrainLoraInput) -> TrainingOutcome:
        workflow.upsert_search_attributes(
            [
                LORA_ID.value_set(request.lora_id),
                LORA_USER_ID.value_set(request.user_id or ""),
                LORA_STATUS.value_set(str(self._indexed_status)),
                LORA_PROGRESS.value_set(self._indexed_progress),
            ]
        )
        workflow.metric_meter().create_counter(
            "loraflow_trainings_started", "Trainings started (TrainLoraWorkflow runs)."
        ).add(1)
        self.add_images(request.image_keys)
        outcome = TrainingOutcome(lora_id=request.lora_id, status=TrainingStatus.FAILED)
        try:
            await self._train(request, outcome)
        except (ActivityError, ApplicationError) as exc:
            outcome.error = _reason(exc)
        except asyncio.CancelledError:
            outcome.error = "cancelled"
        except TimeoutError:
            outcome.error = (
                f"no images arrived within {_duration(request.image_wait_s)} of creating the LoRA "
                f"(it needs at least {MIN_IMAGES}); create it again with its images"
            )
        # Not a `finally`: when the worker evicts this workflow from its cache the SDK raises a
        # BaseException through here, and that must pass untouched (the workflow is not ending;
        # it resumes elsewhere from history). Every way the training really ends is caught above.
        if self._machine is not None:
            # Shielded: a second cancellation must not stop a cleanup that is running.
            outcome.pod_seconds = await asyncio.shield(asyncio.ensure_future(self._cleanup(self._machine)))
        outcome.pod_seconds += self._lost_pods_s
        outcome.cost_usd = round(outcome.pod_seconds / 3600 * self._price, 4)
        return await self._finish(request, outcome)

    # -- steps -----------------------------------------------------------------------------

    async def _train(self, request: TrainLoraInput, outcome: TrainingOutcome) -> None:
        """From the images to the verdict, filling in ``outcome``; raises when it cannot go on."""
        await self._wait_for_images(request)
        self._frozen = True
        await self._status(request.lora_id, TrainingStatus.TRAINING, "preparing")
        dataset = await workflow.execute_activity_method(
            LibraryActivities.prepare_dataset,
            PrepareDatasetInput(request.lora_id, self._image_keys, request.params),
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )
        self._dataset = dataset.keys
        staged = await self._train_on_a_machine(request, dataset.keys)
        if self._machine is not None:  # the machine goes first: it bills while it exists
            outcome.pod_seconds = await self._cleanup(self._machine)
            self._machine = None
        if self._validation is not None:  # validated on the machine: store what passed, if any
            await self._store_validated(request, outcome, self._validation, staged)
            return
        assert staged is not None  # before validate-on-machine every training ends in a file

        self._set(phase="storing")
        trigger = str(request.params.get("trigger_word", "ohwx"))
        outcome.stored = await workflow.execute_activity_method(
            LibraryActivities.store_lora,
            StoreLoraInput(request.lora_id, staged, trigger),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )

        await self._status(request.lora_id, TrainingStatus.VALIDATING, "validating")
        outcome.scores = await self._validate(request, outcome.stored, dataset.keys, trigger)
        _judge(request, outcome)

    async def _wait_for_images(self, request: TrainLoraInput) -> None:
        """A LoRA created without images waits (durably: a timer) for the API's signal."""
        if len(self._image_keys) >= MIN_IMAGES:
            return
        self._set(phase="waiting_for_images")
        await workflow.wait_condition(
            lambda: len(self._image_keys) >= MIN_IMAGES, timeout=timedelta(seconds=request.image_wait_s)
        )

    async def _train_on_a_machine(self, request: TrainLoraInput, dataset: list[str]) -> StagedArtifact | None:
        """On a pod of the configured provider (a new one when a pod is lost mid-training, up to
        MAX_POD_ATTEMPTS); on Replicate when it has no GPU (and the fallback is on). None when
        validation on the machine passed no checkpoint (nothing to store)."""
        attempt = 1
        while True:
            self._set(phase="creating_pod", pod_id=None)
            try:
                pod = await self._create_pod(request, attempt)
            except ActivityError as exc:
                if not (request.replicate_fallback and _error_type(exc) == ErrorType.GPUS_EXHAUSTED):
                    raise
                workflow.logger.warning("no GPU at the pod provider; training on Replicate: %s", _reason(exc))
                return await self._train_on_replicate(request, dataset)
            self._machine = pod
            try:
                return await self._train_on_pod(request, pod, dataset)
            except ActivityError as exc:
                if not (
                    _error_type(exc) == ErrorType.POD_LOST
                    and attempt < MAX_POD_ATTEMPTS
                    and workflow.patched(PATCH_RETRAIN_ON_LOST_POD)
                ):
                    raise
                workflow.logger.warning(
                    "pod lost (attempt %d); training again on a new pod: %s", attempt, _reason(exc)
                )
            self._lost_pods_s += await self._cleanup(pod)
            self._machine = None
            attempt += 1

    async def _create_pod(self, request: TrainLoraInput, attempt: int) -> PodHandle:
        create = CreatePodInput(request.lora_id, workflow.info().workflow_id, attempt)
        if not workflow.patched(PATCH_CREATE_POD_FINISHES_ON_CANCEL):
            return await workflow.execute_activity_method(
                PodActivities.create_pod,
                create,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=_QUICK,
            )
        # A create cannot be taken back: cancelling it mid-call would leave the pod it makes
        # billing with no one to end it. So a cancel lets the create finish (shielded), and the
        # pod it made becomes the machine that cleanup ends and bills.
        creating = workflow.start_activity_method(
            PodActivities.create_pod,
            create,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            try:
                self._machine = await creating
            except ActivityError as exc:
                workflow.logger.info("cancelled while creating a pod that was never made: %s", _reason(exc))
            raise

    async def _train_on_pod(
        self, request: TrainLoraInput, pod: PodHandle, dataset: list[str]
    ) -> StagedArtifact | None:
        self._set(pod_id=pod.pod_id, phase="starting_pod")
        self._machine = pod = await workflow.execute_activity_method(
            PodActivities.wait_pod_ready,
            WaitPodReadyInput(pod),
            start_to_close_timeout=timedelta(minutes=20),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )
        self._set(phase="uploading")
        await workflow.execute_activity_method(
            PodActivities.upload_images,
            UploadImagesInput(pod, dataset),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )
        await workflow.execute_activity_method(
            PodActivities.run_training,
            RunTrainingInput(pod, workflow.info().workflow_id, request.params),
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )
        self._set(phase="training")
        finished = await self._follow_training(pod, request)
        if finished.state != "succeeded" or not finished.sha256:
            raise ApplicationError(f"training failed: {finished.error or finished.state}", non_retryable=True)
        download = DownloadArtifactInput(request.lora_id, pod, finished.sha256)
        if workflow.patched(PATCH_VALIDATE_ON_MACHINE):
            # Validate while the pod and its loaded model are still there; keep the best.
            checkpoints = finished.checkpoints or [
                CheckpointInfo(FINAL_CHECKPOINT, finished.total_steps, finished.sha256, finished.size or 0)
            ]
            report = await self._validate_on_machine(request, pod, checkpoints)
            if report.chosen is None:
                return None
            (chosen,) = [c for c in checkpoints if c.name == report.chosen]
            download = DownloadArtifactInput(request.lora_id, pod, chosen.sha256, chosen.name)
        self._set(phase="downloading")
        return await workflow.execute_activity_method(
            PodActivities.download_artifact,
            download,
            # The pod bills until cleanup, which waits for this: a download that trickles (it
            # beats, so it never stalls) holds it at most DOWNLOAD_LIMIT over every attempt.
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_close_timeout=DOWNLOAD_LIMIT,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )

    async def _follow_training(self, pod: PodHandle, request: TrainLoraInput) -> MachineProgress:
        version = -1
        while True:
            _check_caps(pod, request)
            progress = await workflow.execute_activity_method(
                PodActivities.poll_training,
                PollTrainingInput(workflow.info().workflow_id, pod, version, POLL_WAIT_S),
                start_to_close_timeout=timedelta(seconds=POLL_WAIT_S + 60),
                heartbeat_timeout=timedelta(seconds=POLL_WAIT_S + 10),
                retry_policy=_QUICK,
            )
            version = progress.version
            percent = int(100 * progress.step / progress.total_steps) if progress.total_steps else 0
            self._set(
                step=progress.step,
                total_steps=progress.total_steps,
                loss=progress.loss,
                eta_s=progress.eta_s,
                progress=min(percent, 100),
            )
            if progress.state in ("succeeded", "failed"):
                return progress

    async def _train_on_replicate(self, request: TrainLoraInput, dataset: list[str]) -> StagedArtifact | None:
        """The fallback: Replicate's trainings API in place of a pod and its agent."""
        self._machine = training = await workflow.execute_activity_method(
            ReplicateActivities.replicate_start,
            ReplicateStartInput(request.lora_id, workflow.info().workflow_id, dataset, request.params),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )
        self._set(pod_id=training.recorded_id, phase="training")
        while True:
            _check_caps(training, request)
            progress = await workflow.execute_activity_method(
                ReplicateActivities.replicate_poll,
                ReplicatePollInput(training, POLL_WAIT_S),
                start_to_close_timeout=timedelta(seconds=POLL_WAIT_S + 60),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=_QUICK,
            )
            if progress.state in ("succeeded", "failed"):
                break
        if progress.state != "succeeded":
            raise ApplicationError(
                f"training failed on Replicate: {progress.error or progress.phase}", non_retryable=True
            )
        if workflow.patched(PATCH_VALIDATE_ON_MACHINE):
            final = CheckpointInfo(FINAL_CHECKPOINT, progress.total_steps, progress.sha256 or "", 0)
            report = await self._validate_on_machine(request, training, [final])
            if report.chosen is None:
                return None
        self._set(phase="downloading")
        return await workflow.execute_activity_method(
            ReplicateActivities.replicate_download,
            ReplicateDownloadInput(request.lora_id, training),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )

    async def _cleanup(self, machine: Machine) -> float:
        """End the pod (or the Replicate training); its billed seconds."""
        self._price = machine.price_per_hour
        self._set(phase="cleaning_up")
        timeout = timedelta(minutes=1)
        if isinstance(machine, ReplicateTrainingHandle):
            released = await workflow.execute_activity_method(
                ReplicateActivities.replicate_cancel,
                ReplicateCancelInput(machine),
                start_to_close_timeout=timeout,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=_FOREVER,
            )
        else:
            released = await workflow.execute_activity_method(
                PodActivities.cleanup_pod,
                CleanupPodInput(machine),
                start_to_close_timeout=timeout,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=_FOREVER,
            )
        return released.billed_s

    async def _validate_on_machine(
        self, request: TrainLoraInput, machine: Machine, checkpoints: list[CheckpointInfo]
    ) -> ValidationReport:
        """One activity per prompt, in parallel, on the machine that trained (the pod's agent
        batches them on its GPU); the verdict over every checkpoint. A prompt whose activity
        failed or timed out counts against every checkpoint; the caller's cleanup still runs."""
        await self._status(request.lora_id, TrainingStatus.VALIDATING, "validating")
        trigger = str(request.params.get("trigger_word", "ohwx"))
        timeout = timedelta(seconds=request.validation_timeout_s)
        activities: list[Any] = []
        for index, template in enumerate(request.validation_prompts):
            prompt, seed = template.format(trigger=trigger), 1000 + index
            if isinstance(machine, PodHandle):
                activities.append(
                    workflow.execute_activity_method(
                        ValidationActivities.validate_on_pod,
                        ValidateOnPodInput(
                            request.lora_id, workflow.info().workflow_id, machine, index, prompt, seed,
                            request.validation_steps, checkpoints, self._dataset,
                        ),
                        schedule_to_close_timeout=timeout,
                        heartbeat_timeout=HEARTBEAT,
                        retry_policy=_VALIDATION_RETRY,
                    )
                )  # fmt: skip
            else:
                activities.append(
                    workflow.execute_activity_method(
                        ValidationActivities.validate_on_replicate,
                        ValidateOnReplicateInput(
                            request.lora_id, machine, index, prompt, seed, request.validation_steps,
                            self._dataset,
                        ),
                        schedule_to_close_timeout=timeout,
                        heartbeat_timeout=HEARTBEAT,
                        retry_policy=_VALIDATION_RETRY,
                    )
                )  # fmt: skip
        results = await asyncio.gather(*activities, return_exceptions=True)
        for result in results:
            if isinstance(result, ActivityError) and _error_type(result) == ErrorType.POD_LOST:
                raise result  # the machine went: train again on a new one (or fail), not judge
        prompts = [r for r in results if isinstance(r, PromptValidation)]
        report = choose_checkpoint(
            checkpoints, prompts, asked=len(request.validation_prompts), needed=VALIDATION_IMAGES_NEEDED
        )
        failures = [_validation_failure(r, timeout) for r in results if isinstance(r, BaseException)]
        if failures:
            report.error = failures[0]
        self._validation = report
        self._set(validation=report.summary())
        return report

    async def _store_validated(
        self,
        request: TrainLoraInput,
        outcome: TrainingOutcome,
        report: ValidationReport,
        staged: StagedArtifact | None,
    ) -> None:
        """Store the checkpoint validation chose, or fail with the reason none passed."""
        outcome.validation = report
        chosen = [i for p in report.prompts for i in p.checkpoints if i.checkpoint == report.chosen]
        outcome.scores = [
            ValidationScore(
                index=p.index,
                prompt=p.prompt,
                image_key=i.image_key,
                image_url=i.image_url,
                lora_similarity=i.score if i.score is not None else 0.0,
                base_similarity=p.control.score if p.control.score is not None else 0.0,
                shows_character=i.shows_character,
            )
            for p in report.prompts
            for i in p.checkpoints
            if i.checkpoint == report.chosen
        ] if chosen else []  # fmt: skip
        if staged is None:
            prompts = len(request.validation_prompts)
            best = max((c.shown for c in report.checkpoints), default=0)
            if not report.prompts:
                outcome.error = (
                    f"{report.error or 'validation made no image'}; "
                    "the LoRA was not stored. Create it again to retry."
                )
                return
            why = f" ({report.error})" if report.error else ""
            outcome.error = (
                f"validation failed{why}: at best {best} of {prompts} validation images show the character "
                f"(at least {VALIDATION_IMAGES_NEEDED} must, judged by the {report.judge} judge). "
                "Try more, or more varied, character images."
            )
            return
        self._set(phase="storing")
        outcome.stored = await workflow.execute_activity_method(
            LibraryActivities.store_lora,
            StoreLoraInput(request.lora_id, staged, str(request.params.get("trigger_word", "ohwx"))),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=_QUICK,
        )
        outcome.status = TrainingStatus.COMPLETED

    async def _validate(
        self, request: TrainLoraInput, stored: StoredLora, dataset: list[str], trigger: str
    ) -> list[ValidationScore]:
        requests = [
            ValidationRequest(
                request.lora_id, i, prompt.format(trigger=trigger), 1000 + i, stored.key, dataset
            )
            for i, prompt in enumerate(request.validation_prompts)
        ]
        results = await asyncio.gather(
            *[
                workflow.execute_activity_method(
                    InWorkerValidationActivities.validate_image,
                    r,
                    start_to_close_timeout=timedelta(minutes=15),
                    heartbeat_timeout=HEARTBEAT,
                    retry_policy=_QUICK,
                )
                for r in requests
            ],
            return_exceptions=True,
        )
        return [r for r in results if isinstance(r, ValidationScore)]

    async def _finish(self, request: TrainLoraInput, outcome: TrainingOutcome) -> TrainingOutcome:
        await workflow.execute_activity_method(
            LibraryActivities.record_outcome,
            RecordOutcomeInput(workflow.info().workflow_id, outcome),
            # One short transaction: a worker lost in it is noticed (and the write retried) at
            # this timeout, so it stays well under the minute a lost activity may take.
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_FOREVER,
        )
        self._set(
            status=outcome.status,
            phase=outcome.status,
            error=outcome.error,
            progress=100 if outcome.status == TrainingStatus.COMPLETED else self._progress.progress,
        )
        _record_metrics(outcome)
        finished = LoraFinished(
            lora_id=request.lora_id,
            status=outcome.status,
            error=outcome.error,
            character_id=request.character_id,
            job_id=request.job_id,
            storage_url=outcome.stored.url if outcome.stored else None,
        )
        if request.notify_workflow_id:
            try:
                await workflow.get_external_workflow_handle(request.notify_workflow_id).signal(
                    "lora_finished", finished
                )
            except Exception as exc:  # an orchestrator that is gone changes nothing here
                workflow.logger.warning("could not notify %s: %s", request.notify_workflow_id, exc)
        if request.user_id and workflow.patched(PATCH_EMAIL_ON_OUTCOME):
            await self._email_creator(request.lora_id, outcome)
        # The completion webhook: retried with backoff for about a day, then given up (logged);
        # a receiver that is down never holds the training open for longer.
        try:
            await workflow.execute_activity_method(
                NotifyActivities.send_webhook,
                finished,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=2),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=30),
                    maximum_attempts=60,
                    non_retryable_error_types=[ErrorType.WEBHOOK_REJECTED],
                ),
            )
        except ActivityError as exc:
            workflow.logger.warning("completion webhook not delivered: %s", _reason(exc))
        return outcome

    async def _email_creator(self, lora_id: str, outcome: TrainingOutcome) -> None:
        """Start the e-mail to the creator and go on: the child is abandoned (it outlives this
        workflow), so a mail server that is down holds it, not the training. Once per outcome:
        its id is never reused, so a replayed or reset training finds it started and sends none."""
        try:
            await workflow.start_child_workflow(
                CreatorEmailWorkflow.run,
                OutcomeEmail(lora_id, outcome.status, outcome.error),
                id=creator_email_workflow_id(lora_id, outcome.status),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("the creator's e-mail for LoRA %s was started before; not again", lora_id)

    async def _status(self, lora_id: str, status: TrainingStatus, phase: str) -> None:
        await workflow.execute_activity_method(
            RecordActivities.record_status,
            StatusChange(lora_id, status),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_QUICK,
        )
        self._set(status=status, phase=phase)

    def _set(self, **changes: Any) -> None:
        """Change the live progress (the query's answer and the current details); the search
        attributes follow only on a transition."""
        self._progress = p = replace(self._progress, **changes)
        self._index(p)
        detail = f"**{p.status}** · {p.phase}"
        if p.total_steps:
            detail += f" · step {p.step}/{p.total_steps} ({p.progress}%)"
            if p.loss is not None:
                detail += f" · loss {p.loss:.4f}"
            if p.eta_s:
                detail += f" · ETA {int(p.eta_s)} s"
        if p.validation:
            detail += f"\n\nvalidation: {p.validation}"
        if p.error:
            detail += f" · {p.error}"
        workflow.set_current_details(detail)

    def _index(self, p: TrainingProgress) -> None:
        """Upsert ``LoraStatus`` when the status changed, ``LoraProgress`` when the progress
        crossed a step: one command per transition, none per poll."""
        updates: list[SearchAttributeUpdate[Any]] = []
        if p.status != self._indexed_status:
            self._indexed_status = p.status
            updates.append(LORA_STATUS.value_set(str(p.status)))
        step = p.progress // PROGRESS_STEP * PROGRESS_STEP
        if step != self._indexed_progress:
            self._indexed_progress = step
            updates.append(LORA_PROGRESS.value_set(step))
        if updates:
            workflow.upsert_search_attributes(updates)


def _judge(request: TrainLoraInput, outcome: TrainingOutcome) -> None:
    """The verdict: every validation image generated, and enough of them show the character."""
    prompts = len(request.validation_prompts)
    generated = len(outcome.scores) == prompts
    shown = sum(s.shows_character for s in outcome.scores)
    if generated and shown >= VALIDATION_IMAGES_NEEDED:
        outcome.status = TrainingStatus.COMPLETED
    else:
        outcome.error = (
            f"validation failed: {shown} of {prompts} validation images show the character "
            f"(at least {VALIDATION_IMAGES_NEEDED} must). Try more, or more varied, character images."
        )


def _record_metrics(outcome: TrainingOutcome) -> None:
    meter = workflow.metric_meter()  # records nothing while replaying
    meter.create_counter(f"loraflow_trainings_{outcome.status}", f"Trainings ended {outcome.status}.").add(1)
    meter.create_histogram_float("loraflow_pod_seconds", "Billable pod seconds per training.", "s").record(
        outcome.pod_seconds
    )
    meter.create_histogram_float("loraflow_training_cost_usd", "Pod cost per training.", "USD").record(
        outcome.cost_usd
    )


def _check_caps(machine: Machine, request: TrainLoraInput) -> None:
    stop = cap_reason(
        workflow.now().timestamp() - machine.created_at,
        machine.price_per_hour,
        cost_cap_usd=request.cost_cap_usd,
        max_training_s=request.max_training_s,
    )
    if stop:
        raise ApplicationError(stop, type=ErrorType.CAP_REACHED, non_retryable=True)


def cap_reason(
    elapsed_s: float, price_per_hour: float, *, cost_cap_usd: float, max_training_s: float
) -> str | None:
    """Why a running training must stop now, or None: its pod has cost or run too much."""
    cost = max(0.0, elapsed_s) / 3600 * price_per_hour
    if cost >= cost_cap_usd:
        return (
            f"stopped: this training's pod cost reached its ${cost_cap_usd:.2f} cap; "
            "try fewer steps or a lower resolution"
        )
    if elapsed_s >= max_training_s:
        return f"stopped: this training ran longer than its {_duration(max_training_s)} limit"
    return None


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def _validation_failure(exc: BaseException, timeout: timedelta) -> str:
    """Why a validation activity gave no result, in words a user can read."""
    if isinstance(exc, ActivityError) and (
        exc.retry_state == RetryState.TIMEOUT or isinstance(exc.cause, ActivityTimeout)
    ):
        return f"validation timed out after {_duration(timeout.total_seconds())}"
    return _reason(exc)


def _error_type(exc: BaseException) -> str | None:
    while isinstance(exc, ActivityError) and exc.cause is not None:
        exc = exc.cause
    return getattr(exc, "type", None)


def _reason(exc: BaseException) -> str:
    """The message a user can act on: the activity's own ApplicationError, not Temporal's
    wrapping around it nor the library error beneath it."""
    while isinstance(exc, ActivityError) and exc.cause is not None:
        exc = exc.cause
    if isinstance(exc, CancelledError):
        return "cancelled"
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
