"""Scripted stand-ins for TrainLoraWorkflow's activities, registered under the real activity names,
so the workflow's branching (image wait, caps, GPU exhaustion → Replicate, cancel → cleanup, the
2-of-3 verdict) runs on the real Temporal dev server in about a second, with no pod and no model.

Each scenario sets the few knobs it needs; every call is recorded in ``calls`` (name, input) so a
test asserts what the workflow asked for, e.g. that cleanup ended the pod create_pod made.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.contracts.errors import ErrorType
from loraflow.contracts.jobs import LoraFinished
from loraflow.contracts.lora_training import (
    CheckpointInfo,
    CleanupPodInput,
    CreatePodInput,
    DownloadArtifactInput,
    EmailDelivery,
    JudgedImage,
    MachineProgress,
    MachineReleased,
    OutcomeEmail,
    PodHandle,
    PollTrainingInput,
    PrepareDatasetInput,
    PreparedDataset,
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
    UploadedImages,
    UploadImagesInput,
    ValidateOnPodInput,
    ValidateOnReplicateInput,
    ValidationRequest,
    ValidationScore,
    WaitPodReadyInput,
    WebhookDelivery,
)
from loraflow.contracts.names import CONTROL, FINAL_CHECKPOINT, pod_name

__all__ = ["CHECKPOINTS", "CONTROL_SCORE", "POLLS_TO_FINISH", "ScriptedActivities", "TrainingScript"]

#: How many polls a scripted training takes before it succeeds.
POLLS_TO_FINISH = 3
#: The control's (the base model's image's) score in every scripted validation.
CONTROL_SCORE = 0.6
#: The scripted trainer's checkpoints: at 50 %, 75 % and 100 % of its 4 steps.
CHECKPOINTS = [
    CheckpointInfo("step-000002", 2, "02" * 32, 10),
    CheckpointInfo("step-000003", 3, "03" * 32, 10),
    CheckpointInfo(FINAL_CHECKPOINT, 4, "ab" * 32, 10),
]


@dataclass
class TrainingScript:
    """What the scripted machine does; the defaults are a training that completes."""

    gpus_exhausted: bool = False  # create_pod fails as a provider with no GPU does
    pod_price_per_hour: float = 0.69
    pod_age_s: float = 0.0  # created_at this long ago (a cost or time cap already reached)
    training_fails: str | None = None  # the agent reports this error instead of a file
    polls_forever: bool = False  # training never ends (for cancel)
    pods_lost: int = 0  # the first this many pods are lost mid-training (agent gone, preempted)
    shows_character: tuple[bool, ...] = (True, True, True)  # per validation prompt
    #: Each checkpoint's likeness score (the control scores CONTROL_SCORE); a checkpoint's image
    #: shows the character where its prompt's ``shows_character`` holds and it beats the control.
    checkpoint_scores: dict[str, float] = field(
        default_factory=lambda: {"step-000002": 0.7, "step-000003": 0.8, FINAL_CHECKPOINT: 0.9}
    )
    validation_hangs: bool = False  # validate_on_pod never answers (a validation timeout)
    #: Set: create_pod waits for it before returning (a cancel arriving mid-create).
    hold_create: asyncio.Event | None = None


@dataclass
class ScriptedActivities:
    script: TrainingScript = field(default_factory=TrainingScript)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    create_started: asyncio.Event = field(default_factory=asyncio.Event)
    training_started: asyncio.Event = field(default_factory=asyncio.Event)
    _polls: int = 0

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def inputs(self, name: str) -> list[Any]:
        return [request for called, request in self.calls if called == name]

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.record_status,
            self.prepare_dataset,
            self.create_pod,
            self.wait_pod_ready,
            self.upload_images,
            self.run_training,
            self.poll_training,
            self.download_artifact,
            self.cleanup_pod,
            self.replicate_start,
            self.replicate_poll,
            self.replicate_download,
            self.replicate_cancel,
            self.store_lora,
            self.validate_image,
            self.validate_on_pod,
            self.validate_on_replicate,
            self.record_outcome,
            self.send_webhook,
            self.send_outcome_email,
        ]

    def _pod(self, request: CreatePodInput) -> PodHandle:
        return PodHandle(
            provider="scripted",
            pod_id=f"pod-{uuid.uuid4().hex[:8]}",
            name=pod_name(request.workflow_id, request.attempt),
            endpoint="http://127.0.0.1:9",
            token="t",
            price_per_hour=self.script.pod_price_per_hour,
            created_at=time.time() - self.script.pod_age_s,
        )

    def _progress(self) -> MachineProgress:
        self._polls += 1
        if self.script.polls_forever or self._polls < POLLS_TO_FINISH:
            return MachineProgress(
                state="training", version=self._polls, step=self._polls, total_steps=POLLS_TO_FINISH + 1
            )
        if self.script.training_fails:
            return MachineProgress(state="failed", version=self._polls, error=self.script.training_fails)
        return MachineProgress(
            state="succeeded", version=self._polls, step=4, total_steps=4, sha256="ab" * 32, size=10,
            checkpoints=list(CHECKPOINTS),
        )  # fmt: skip

    @activity.defn(name="record_status")
    async def record_status(self, change: StatusChange) -> None:
        self.calls.append(("record_status", change))

    @activity.defn(name="prepare_dataset")
    async def prepare_dataset(self, request: PrepareDatasetInput) -> PreparedDataset:
        self.calls.append(("prepare_dataset", request))
        return PreparedDataset([f"lora-staging/{request.lora_id}/{i:03d}.png" for i in range(3)])

    @activity.defn(name="create_pod")
    async def create_pod(self, request: CreatePodInput) -> PodHandle:
        self.calls.append(("create_pod", request))
        self.create_started.set()
        if self.script.gpus_exhausted:
            raise ApplicationError(
                "no GPU available in any configured type", type=ErrorType.GPUS_EXHAUSTED, non_retryable=True
            )
        if self.script.hold_create is not None:
            await self.script.hold_create.wait()
        return self._pod(request)

    @activity.defn(name="wait_pod_ready")
    async def wait_pod_ready(self, request: WaitPodReadyInput) -> PodHandle:
        self.calls.append(("wait_pod_ready", request))
        return request.pod

    @activity.defn(name="upload_images")
    async def upload_images(self, request: UploadImagesInput) -> UploadedImages:
        self.calls.append(("upload_images", request))
        return UploadedImages(len(request.keys))

    @activity.defn(name="run_training")
    async def run_training(self, request: RunTrainingInput) -> None:
        self.calls.append(("run_training", request))

    @activity.defn(name="poll_training")
    async def poll_training(self, request: PollTrainingInput) -> MachineProgress:
        self.calls.append(("poll_training", request))
        self.training_started.set()
        if len(self.inputs("create_pod")) <= self.script.pods_lost:
            raise ApplicationError(
                f"the training machine was lost (pod {request.pod.pod_id} is exited)",
                type=ErrorType.POD_LOST,
                non_retryable=True,
            )
        if self.script.polls_forever:
            await asyncio.sleep(0.05)  # a long poll that answers "still training"
        return self._progress()

    @activity.defn(name="download_artifact")
    async def download_artifact(self, request: DownloadArtifactInput) -> StagedArtifact:
        self.calls.append(("download_artifact", request))
        return StagedArtifact(f"lora-staging/{request.lora_id}/lora.safetensors", 10, request.sha256)

    @activity.defn(name="cleanup_pod")
    async def cleanup_pod(self, request: CleanupPodInput) -> MachineReleased:
        self.calls.append(("cleanup_pod", request))
        return MachineReleased(billed_s=120.0)

    @activity.defn(name="replicate_start")
    async def replicate_start(self, request: ReplicateStartInput) -> ReplicateTrainingHandle:
        self.calls.append(("replicate_start", request))
        return ReplicateTrainingHandle(
            f"r{uuid.uuid4().hex[:10]}", price_per_hour=5.04, created_at=time.time()
        )

    @activity.defn(name="replicate_poll")
    async def replicate_poll(self, request: ReplicatePollInput) -> MachineProgress:
        self.calls.append(("replicate_poll", request))
        self.training_started.set()
        return self._progress()

    @activity.defn(name="replicate_download")
    async def replicate_download(self, request: ReplicateDownloadInput) -> StagedArtifact:
        self.calls.append(("replicate_download", request))
        return StagedArtifact(f"lora-staging/{request.lora_id}/lora.safetensors", 10, "cd" * 32)

    @activity.defn(name="replicate_cancel")
    async def replicate_cancel(self, request: ReplicateCancelInput) -> MachineReleased:
        self.calls.append(("replicate_cancel", request))
        return MachineReleased(billed_s=60.0)

    @activity.defn(name="store_lora")
    async def store_lora(self, request: StoreLoraInput) -> StoredLora:
        self.calls.append(("store_lora", request))
        key = f"lora-models/{request.lora_id}.safetensors"
        return StoredLora(key, f"https://storage.example/{key}", request.staged.size, request.staged.sha256)

    @activity.defn(name="validate_image")
    async def validate_image(self, request: ValidationRequest) -> ValidationScore:
        self.calls.append(("validate_image", request))
        shown = self.script.shows_character[request.index]
        return ValidationScore(
            request.index,
            request.prompt,
            f"validation/{request.lora_id}/{request.index}.png",
            f"https://storage.example/validation/{request.lora_id}/{request.index}.png",
            lora_similarity=0.9 if shown else 0.5,
            base_similarity=0.6,
            shows_character=shown,
        )

    @activity.defn(name="validate_on_pod")
    async def validate_on_pod(self, request: ValidateOnPodInput) -> PromptValidation:
        self.calls.append(("validate_on_pod", request))
        if self.script.validation_hangs:
            await asyncio.Event().wait()  # until the activity's timeout cancels it
        return self._judged(request.lora_id, request.index, request.prompt, request.seed, request.checkpoints)

    @activity.defn(name="validate_on_replicate")
    async def validate_on_replicate(self, request: ValidateOnReplicateInput) -> PromptValidation:
        self.calls.append(("validate_on_replicate", request))
        final = [CheckpointInfo(FINAL_CHECKPOINT, 4, "cd" * 32, 10)]
        return self._judged(request.lora_id, request.index, request.prompt, request.seed, final)

    def _judged(
        self, lora_id: str, index: int, prompt: str, seed: int, checkpoints: list[CheckpointInfo]
    ) -> PromptValidation:
        def image(name: str, step: int, score: float, shows: bool) -> JudgedImage:
            key = f"lora-validation/{lora_id}/{index}-{name}.png"
            return JudgedImage(name, step, key, f"https://storage.example/{key}", score, shows)

        shown = self.script.shows_character[index]
        scores = self.script.checkpoint_scores
        return PromptValidation(
            index=index,
            prompt=prompt,
            seed=seed,
            judge="scripted",
            control=image(CONTROL, 0, CONTROL_SCORE, False),
            checkpoints=[
                image(c.name, c.step, scores[c.name], shown and scores[c.name] > CONTROL_SCORE)
                for c in checkpoints
            ],
        )

    @activity.defn(name="record_outcome")
    async def record_outcome(self, request: RecordOutcomeInput) -> None:
        self.calls.append(("record_outcome", request))

    @activity.defn(name="send_webhook")
    async def send_webhook(self, finished: LoraFinished) -> WebhookDelivery:
        self.calls.append(("send_webhook", finished))
        return WebhookDelivery(delivered=False)

    @activity.defn(name="send_outcome_email")
    async def send_outcome_email(self, email: OutcomeEmail) -> EmailDelivery:
        self.calls.append(("send_outcome_email", email))
        return EmailDelivery(sent=True)
