"""Every name loraflow derives from an id: workflow ids, pod names, storage buckets and keys.

One home for each, so that the workflow that writes a key and the activity or sweeper that reads
it can never disagree. Standard library only: the workflow sandbox imports this module.
"""

from __future__ import annotations

import enum
import uuid

from training_scripts import agent_protocol as wire

__all__ = [
    "CONTROL",
    "EMAIL_WORKFLOW_PREFIX",
    "FINAL_CHECKPOINT",
    "JOB_WORKFLOW_PREFIX",
    "POD_NAME_PREFIX",
    "POD_RETRY_MARK",
    "PUBLIC_BUCKETS",
    "REPLICATE_HANDLE_PREFIX",
    "TRAIN_WORKFLOW_PREFIX",
    "Bucket",
    "creator_email_workflow_id",
    "generated_image_key",
    "job_workflow_id",
    "keyframe_key",
    "lora_id_of_workflow",
    "lora_images_prefix",
    "pod_name",
    "replicate_artifact_key",
    "replicate_dataset_key",
    "replicate_handle",
    "staged_artifact_key",
    "staged_image_key",
    "stored_lora_key",
    "train_workflow_id",
    "training_job_id",
    "uploaded_image_key",
    "validation_image_key",
    "validation_prefix",
    "workflow_of_pod",
]

#: ``TrainLoraWorkflow``'s id is ``lora-train-{lora_id}``: one workflow per LoRA, ever.
TRAIN_WORKFLOW_PREFIX = "lora-train-"
#: ``JobLorasWorkflow``'s id is ``lora-job-{job_id}``: one per video job.
JOB_WORKFLOW_PREFIX = "lora-job-"
#: ``CreatorEmailWorkflow``'s id is ``lora-email-{lora_id}-{status}``: one e-mail per outcome, ever.
EMAIL_WORKFLOW_PREFIX = "lora-email-"
#: A training pod is named ``lf-{workflow id}``: found again by name after a crash, and how the
#: orphan sweeper tells loraflow's pods from others on the same account.
POD_NAME_PREFIX = "lf-"
#: How a Replicate training is recorded where a pod id would be (``lora_training_jobs.runpod_pod_id``).
REPLICATE_HANDLE_PREFIX = "replicate:"


class Bucket(enum.StrEnum):
    """The storage buckets. Keys are ``{bucket}/{path}``."""

    TRAINING_IMAGES = "lora-training-images"  # private: the users' uploads and generated images
    MODELS = "lora-models"  # public: the library is public
    VALIDATION = "lora-validation"  # private, signed URLs; purged after 30 days
    STAGING = "lora-staging"  # private: datasets and artifacts between activities
    KEYFRAMES = "lora-keyframes"  # private: keyframes of the pre-process path
    LOGS = "lora-logs"  # private: failed trainings' logs, for whoever operates the service


#: Buckets anyone may read by URL; the others are reached by signed, expiring URLs.
PUBLIC_BUCKETS = frozenset({Bucket.MODELS.value})


def train_workflow_id(lora_id: str) -> str:
    return f"{TRAIN_WORKFLOW_PREFIX}{lora_id}"


def lora_id_of_workflow(workflow_id: str) -> str | None:
    """The LoRA a ``TrainLoraWorkflow`` id is for, or None for any other id."""
    return (
        workflow_id.removeprefix(TRAIN_WORKFLOW_PREFIX)
        if workflow_id.startswith(TRAIN_WORKFLOW_PREFIX)
        else None
    )


def job_workflow_id(job_id: str) -> str:
    return f"{JOB_WORKFLOW_PREFIX}{job_id}"


def creator_email_workflow_id(lora_id: str, status: str) -> str:
    """The workflow that e-mails a LoRA's creator its outcome (``status``: completed | failed)."""
    return f"{EMAIL_WORKFLOW_PREFIX}{lora_id}-{status}"


#: A retry's pod (the first was lost) is named ``{pod_name}{POD_RETRY_MARK}{attempt}``.
POD_RETRY_MARK = "-r"


def pod_name(workflow_id: str, attempt: int = 1) -> str:
    """The pod a training's ``attempt`` runs on: found again by name after a crash; a pod that
    was lost gets a successor under a new name (providers do not reuse names)."""
    base = f"{POD_NAME_PREFIX}{workflow_id}"
    return base if attempt == 1 else f"{base}{POD_RETRY_MARK}{attempt}"


def workflow_of_pod(name: str) -> str | None:
    """The workflow id a pod of ours was named for (any attempt); None if not ours."""
    if not name.startswith(POD_NAME_PREFIX):
        return None
    workflow_id = name.removeprefix(POD_NAME_PREFIX)
    head, mark, attempt = workflow_id.rpartition(POD_RETRY_MARK)
    return head if mark and attempt.isdigit() and int(attempt) > 1 else workflow_id


def replicate_handle(training_id: str) -> str:
    return f"{REPLICATE_HANDLE_PREFIX}{training_id}"


_TRAINING_JOB_NAMESPACE = uuid.UUID("6c6f7261-666c-6f77-0000-000000000001")


def training_job_id(workflow_id: str) -> str:
    """The ``lora_training_jobs`` row of a training workflow: one per workflow, with an id a
    retried activity computes again."""
    return str(uuid.uuid5(_TRAINING_JOB_NAMESPACE, workflow_id))


def lora_images_prefix(user_id: str, lora_id: str) -> str:
    """Where a LoRA's own images live (uploaded and generated); a dataset holds only these."""
    return f"{Bucket.TRAINING_IMAGES}/{user_id}/{lora_id}/"


def uploaded_image_key(user_id: str, lora_id: str, index: int, extension: str) -> str:
    return f"{Bucket.TRAINING_IMAGES}/{user_id}/{lora_id}/uploaded/{index}.{extension}"


def generated_image_key(user_id: str, lora_id: str, index: int, extension: str) -> str:
    return f"{Bucket.TRAINING_IMAGES}/{user_id}/{lora_id}/generated/{index}.{extension}"


def staged_image_key(lora_id: str, index: int) -> str:
    """A dataset image, checked and normalised, ready for a pod."""
    return f"{Bucket.STAGING}/{lora_id}/dataset/{index}.png"


def replicate_dataset_key(lora_id: str) -> str:
    return f"{Bucket.STAGING}/{lora_id}/replicate-dataset.zip"


def training_log_key(workflow_id: str, pod_id: str) -> str:
    """Where a failed training's full log is kept (its failure carries only the key)."""
    return f"{Bucket.LOGS}/{workflow_id}/{pod_id}.log"


def staged_artifact_key(lora_id: str, sha256: str) -> str:
    return f"{Bucket.STAGING}/{lora_id}/{sha256}.safetensors"


def replicate_artifact_key(lora_id: str, training_id: str) -> str:
    return f"{Bucket.STAGING}/{lora_id}/replicate-{training_id}.safetensors"


def stored_lora_key(lora_id: str, sha256: str) -> str:
    """A LoRA in the public library: content-addressed, never overwritten."""
    return f"{Bucket.MODELS}/{lora_id}/{sha256}.safetensors"


#: The finished LoRA's checkpoint name, and what the base model's image (the control) is called
#: among a validation prompt's images: the pod agent's wire names, used for Replicate's too.
FINAL_CHECKPOINT = wire.FINAL_CHECKPOINT
CONTROL = wire.BASE_IMAGES


def validation_prefix(lora_id: str) -> str:
    return f"{Bucket.VALIDATION}/{lora_id}/"


def validation_image_key(lora_id: str, index: int, checkpoint: str | None = None) -> str:
    """The ``index``-th validation prompt's image: of a checkpoint (``base`` for the control),
    or, from workflows before validation moved to the machine, the one LoRA image."""
    suffix = "" if checkpoint is None else f"-{checkpoint}"
    return f"{validation_prefix(lora_id)}{index}{suffix}.png"


def keyframe_key(lora_id: str, clip_id: str) -> str:
    return f"{Bucket.KEYFRAMES}/{lora_id}/{clip_id}.png"
