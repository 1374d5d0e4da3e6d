"""The ``type`` of every ``ApplicationError`` that crosses the worker/workflow boundary.

A workflow decides what to do from an activity failure's type (train on Replicate when the pod
provider has no GPU; never retry a bad image). The type is a string on the wire, so it lives
here, once, for both sides: renaming an exception class can no longer silently change it.
Standard library only: the workflow sandbox imports this module.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorType"]


class ErrorType(enum.StrEnum):
    #: The video job's LoRA could not be created, for a reason without a type of its own.
    REFUSED = "Refused"
    #: No GPU type of the pod provider could be placed: the workflow trains on Replicate.
    GPUS_EXHAUSTED = "GpusExhausted"
    #: The provider refused or failed (``retryable`` decides whether Temporal retries).
    PROVIDER = "ProviderError"
    #: A dataset image is unusable: the user must replace it.
    BAD_IMAGE = "BadImage"
    #: A pod lost before or during training (it stopped, failed or vanished: agent killed, spot
    #: pod preempted, host gone, ended by someone else): the workflow trains again on a new pod,
    #: a bounded number of times. (Was "PodGone" when it ended the training.)
    POD_LOST = "PodLost"
    #: The provider says the pod cannot run (RunPod's ERROR).
    POD_FAILED = "PodFailed"
    #: The training's cost or time cap was reached.
    CAP_REACHED = "CapReached"
    #: The webhook receiver refused the completion webhook (a 4xx other than 408/429).
    WEBHOOK_REJECTED = "WebhookRejected"
    #: The SMTP server refused the creator's e-mail for good (a 5xx reply: no such mailbox,
    #: relaying denied, authentication failed); 4xx replies and connection errors are retried.
    EMAIL_REJECTED = "EmailRejected"
    #: A video model the clip planner does not know.
    UNKNOWN_VIDEO_MODEL = "UnknownVideoModel"
    #: Training parameters out of bounds.
    INVALID_PARAMS = "InvalidParams"
    #: The job's LoRA was refused: its name is taken, the user's month is used up, or the budget.
    DUPLICATE_NAME = "DuplicateName"
    MONTHLY_LIMIT_REACHED = "MonthlyLimitReached"
    BUDGET_EXHAUSTED = "BudgetExhausted"
    #: A job's request names a job loraflow does not know.
    UNKNOWN_JOB = "UnknownJob"
    #: No judge on this worker can judge the references (e.g. no face, and no image-embedding
    #: model configured): validation cannot decide, so the LoRA does not enter the library.
    NO_JUDGE = "NoJudge"
    #: Too few usable images for a character.
    TOO_FEW_IMAGES = "TooFewImages"
