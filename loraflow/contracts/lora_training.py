"""What the training workflow and its activities pass each other: plain dataclasses only, so the
workflow sandbox can import this module (no I/O, no torch, no psycopg).

Every activity takes one input dataclass and returns one result (a dataclass, or None). A field
added later must have a default: a task an older workflow scheduled, or a schedule's stored
input, still decodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loraflow.contracts.limits import MAX_TRAINING_S, PENDING_IMAGES_WAIT_S, TRAINING_COST_CAP_USD
from loraflow.contracts.names import replicate_handle
from loraflow.contracts.status import TrainingStatus

#: The validation images' prompts (``{trigger}`` becomes the trigger word), one validate_image
#: activity each. They travel in ``TrainLoraInput``, so editing them never changes the commands
#: of a workflow already running.
DEFAULT_VALIDATION_PROMPTS = (
    "a photo of {trigger} character",
    "{trigger} character standing in a park",
    "portrait of {trigger} character, smiling",
)


@dataclass
class TrainLoraInput:
    lora_id: str
    user_id: str | None
    image_keys: list[str]  # storage keys of the uploaded character images
    params: dict[str, Any]  # train_lora.TrainConfig options (steps, rank, ...)
    base_model_family: str = "sdxl"
    #: With fewer than MIN_IMAGES keys the workflow waits this long for an ``add_images`` signal.
    image_wait_s: float = PENDING_IMAGES_WAIT_S
    #: A workflow (the video-job orchestrator's) signalled ``lora_finished`` with the outcome.
    notify_workflow_id: str | None = None
    character_id: str | None = None  # set for a job's LoRAs: the character it is of
    cost_cap_usd: float = TRAINING_COST_CAP_USD  # a running training stops when its pod cost reaches this
    max_training_s: float = MAX_TRAINING_S  # ... or when its pod has run this long
    replicate_fallback: bool = False  # when the pod provider has no GPU, train on Replicate
    job_id: str | None = None
    validation_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_VALIDATION_PROMPTS))
    #: Denoising steps of each validation image (the tiny demo model needs far fewer than SDXL).
    validation_steps: int = 25
    #: How long the validation of one prompt may take, retries included; the machine is
    #: cleaned up after it either way.
    validation_timeout_s: float = 15 * 60


# -- what the workflow holds while a machine trains -------------------------------------------


@dataclass(frozen=True)
class PodHandle:
    """A training pod, as the workflow holds it: how to reach its agent and what it costs.

    The one pod handle: providers report a pod as ``loraflow.compute.PodState`` (this handle
    and the pod's status now); the workflow passes only the handle."""

    provider: str
    pod_id: str
    name: str
    endpoint: str | None  # the agent's base URL; None until the provider knows it
    token: str  # the agent's bearer token
    price_per_hour: float  # USD
    created_at: float  # unix seconds


@dataclass(frozen=True)
class ReplicateTrainingHandle:
    """A training on Replicate (the fallback when the pod provider has no GPU): no pod, no
    agent; cleanup cancels it instead of terminating a pod."""

    training_id: str
    price_per_hour: float  # USD, what Replicate's hardware for the trainer costs
    created_at: float  # unix seconds

    @property
    def recorded_id(self) -> str:
        """How it is recorded where a pod id would be (``lora_training_jobs.runpod_pod_id``)."""
        return replicate_handle(self.training_id)


@dataclass
class MachineProgress:
    """A training as the workflow follows it, from a pod's agent (decoded from the agent's wire
    format, ``training_scripts.agent_protocol.Progress``) or from Replicate."""

    state: str = "idle"  # idle | training | succeeded | failed
    version: int = -1
    phase: str | None = None
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    error: str | None = None
    sha256: str | None = None
    size: int | None = None
    #: The LoRAs saved so far, oldest first; the last is the artifact once it succeeded.
    checkpoints: list[CheckpointInfo] = field(default_factory=list)


@dataclass(frozen=True)
class CheckpointInfo:
    """A LoRA the trainer saved at ``step``; ``name`` is how its machine serves it
    (``FINAL_CHECKPOINT`` for the finished artifact)."""

    name: str
    step: int
    sha256: str
    size: int


@dataclass
class TrainingProgress:
    """The live state a query returns and the Web UI shows."""

    status: TrainingStatus = TrainingStatus.PENDING  # lora_models.training_status
    phase: str = "pending"  # finer: preparing, creating_pod, uploading, training, downloading, ...
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    progress: int = 0  # 0-100
    pod_id: str | None = None
    error: str | None = None
    validation: str | None = None  # the validation's outcome in a line, once known


@dataclass
class StagedArtifact:
    key: str
    size: int
    sha256: str


@dataclass
class StoredLora:
    key: str
    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ScreeningFinding:
    """One detection of automatic screening (``loraflow.ml.screening``): a blocked label at or
    over the threshold, with the detector's score."""

    label: str  # a NudeNet label, e.g. FEMALE_BREAST_EXPOSED
    score: float


@dataclass
class Screening:
    """What automatic screening found in one image: ``flagged`` when any blocked label scored at
    or over the threshold; ``findings`` are those detections, highest score first."""

    flagged: bool
    findings: list[ScreeningFinding] = field(default_factory=list)

    def describe(self) -> str:
        """The findings in a line, e.g. ``FEMALE_BREAST_EXPOSED 0.83, BUTTOCKS_EXPOSED 0.71``."""
        return ", ".join(f"{f.label} {f.score:.2f}" for f in self.findings) or "nothing found"


@dataclass
class ValidationRequest:
    """validate_image's input: one prompt, generated with and without the LoRA."""

    lora_id: str
    index: int
    prompt: str
    seed: int
    lora_key: str
    reference_keys: list[str]


@dataclass
class ValidationScore:
    index: int
    prompt: str
    image_key: str
    image_url: str
    lora_similarity: float
    base_similarity: float
    shows_character: bool
    #: Automatic screening of the LoRA's image (validate_image, workflows before
    #: validate-on-machine); None where it was off or the result predates screening.
    screening: Screening | None = None


@dataclass
class JudgedImage:
    """One validation image, scored by the judge against the character's references."""

    checkpoint: str  # the checkpoint's name, or ``CONTROL`` for the base model's image
    step: int  # the checkpoint's step (0 for the control)
    image_key: str
    image_url: str
    score: float | None  # None: the judge found nothing to judge (e.g. no face)
    shows_character: bool  # False for the control
    #: Automatic screening's verdict on the image; None where it was off (or the result came from
    #: a worker before screening: a field added later has a default, so old histories decode).
    #: A flagged checkpoint image puts the LoRA up for review (``record_outcome``).
    screening: Screening | None = None


@dataclass
class PromptValidation:
    """validate_on_pod's / validate_on_replicate's result: one prompt and seed, the control and
    every checkpoint's image."""

    index: int
    prompt: str
    seed: int
    judge: str  # face | embedding | pixel
    control: JudgedImage
    checkpoints: list[JudgedImage]


@dataclass
class CheckpointVerdict:
    name: str
    step: int
    likeness: float | None  # the mean of its images' scores (those the judge could score)
    shown: int  # how many prompts' images show the character
    passed: bool  # every prompt generated and at least VALIDATION_IMAGES_NEEDED show it


@dataclass
class ValidationReport:
    """What validation decided: the judge, every checkpoint's verdict, the one kept."""

    judge: str
    checkpoints: list[CheckpointVerdict]
    prompts: list[PromptValidation]
    chosen: str | None = None  # None: no checkpoint passed, nothing is stored
    chosen_step: int | None = None
    error: str | None = None  # why validation could not judge, when it could not

    def summary(self) -> str:
        shown = ", ".join(
            f"step {c.step}: {c.shown}/{len(self.prompts)}"
            + ("" if c.likeness is None else f" ({c.likeness:.3f})")
            for c in self.checkpoints
        )
        kept = f"kept step {self.chosen_step}" if self.chosen else "no checkpoint passed"
        return f"{self.judge} judge · {shown} · {kept}"


@dataclass
class TrainingOutcome:
    lora_id: str
    status: TrainingStatus  # completed | failed
    error: str | None = None
    stored: StoredLora | None = None
    scores: list[ValidationScore] = field(default_factory=list)
    cost_usd: float = 0.0
    pod_seconds: float = 0.0
    validation: ValidationReport | None = None  # from workflows that validate on the machine


# -- activity inputs and results ---------------------------------------------------------------


@dataclass
class StatusChange:
    """record_status's input: the LoRA's training_status (and the reason, when it failed)."""

    lora_id: str
    status: TrainingStatus
    error_message: str | None = None


@dataclass
class PrepareDatasetInput:
    lora_id: str
    image_keys: list[str]
    #: The parameters it will train with, checked here before any machine is rented.
    params: dict[str, Any] | None = None


@dataclass
class PreparedDataset:
    keys: list[str]  # the checked, normalised images under the staging bucket, in order


@dataclass
class CreatePodInput:
    lora_id: str
    workflow_id: str  # the pod is named after it (``names.pod_name``): found again after a crash
    attempt: int = 1  # 2, 3...: the pod before it was lost; a new pod under a new name


@dataclass
class WaitPodReadyInput:
    pod: PodHandle


@dataclass
class UploadImagesInput:
    pod: PodHandle
    keys: list[str]


@dataclass
class UploadedImages:
    count: int


@dataclass
class RunTrainingInput:
    pod: PodHandle
    run_id: str
    params: dict[str, Any]


@dataclass
class PollTrainingInput:
    workflow_id: str
    pod: PodHandle
    after_version: int  # the agent answers once its progress is newer than this
    wait_s: float  # ... or after this long with what it has


@dataclass
class DownloadArtifactInput:
    lora_id: str
    pod: PodHandle
    sha256: str  # what the agent said the file's hash is
    checkpoint: str | None = None  # a checkpoint's name; None: the finished artifact


@dataclass
class ValidateOnPodInput:
    """One validation prompt, generated on the pod that trained (base model and each
    checkpoint, same seed) and judged against the references (the prepared dataset)."""

    lora_id: str
    workflow_id: str
    pod: PodHandle
    index: int
    prompt: str
    seed: int
    steps: int
    checkpoints: list[CheckpointInfo]
    reference_keys: list[str]


@dataclass
class ValidateOnReplicateInput:
    """One validation prompt on the fallback: predictions of the version the training made,
    with the LoRA (``lora_scale`` 1) and without it (0), same seed."""

    lora_id: str
    training: ReplicateTrainingHandle
    index: int
    prompt: str
    seed: int
    steps: int
    reference_keys: list[str]


@dataclass
class CleanupPodInput:
    pod: PodHandle


@dataclass
class MachineReleased:
    """cleanup_pod's and replicate_cancel's result: the machine is gone (or the training ended)."""

    billed_s: float  # the seconds it billed


@dataclass
class ReplicateStartInput:
    lora_id: str
    workflow_id: str
    dataset: list[str]  # the prepared dataset's keys
    params: dict[str, Any]


@dataclass
class ReplicatePollInput:
    training: ReplicateTrainingHandle
    wait_s: float


@dataclass
class ReplicateDownloadInput:
    lora_id: str
    training: ReplicateTrainingHandle


@dataclass
class ReplicateCancelInput:
    training: ReplicateTrainingHandle


@dataclass
class StoreLoraInput:
    lora_id: str
    staged: StagedArtifact
    trigger_word: str


@dataclass
class RecordOutcomeInput:
    workflow_id: str
    outcome: TrainingOutcome


@dataclass
class WebhookDelivery:
    """send_webhook's result."""

    delivered: bool  # False when no webhook is configured


@dataclass
class OutcomeEmail:
    """CreatorEmailWorkflow's input, and send_outcome_email's: the LoRA that ended, and how."""

    lora_id: str
    status: TrainingStatus  # completed | failed
    error: str | None = None  # the reason a failed LoRA failed


@dataclass
class EmailDelivery:
    """send_outcome_email's result."""

    sent: bool
    #: Why it was not sent (no SMTP server configured, no address for the creator); None when sent.
    reason: str | None = None
