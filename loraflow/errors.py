"""loraflow's exceptions: one tree, so a caller can catch as broadly or as narrowly as it needs.

    LoraflowError
    ├── ProviderError                 a compute provider refused or failed (``retryable``)
    │   ├── GpusExhausted             no GPU type could be placed: train elsewhere
    │   └── ProviderNotFound          no such pod or training: asking again will not help
    ├── StorageError
    │   ├── ObjectNotFound            no object at that key
    │   └── ObjectExists              the key holds other bytes (objects are never overwritten)
    ├── InputRejected                 the caller's input is unusable; the message says why
    │   ├── ImageRejected             one image (``filename``, ``reason``)
    │   ├── DatasetRejected           the set of images (too few, too many, duplicates)
    │   └── UnknownVideoModel
    ├── Refused                       a valid request the product says no to
    │   ├── DuplicateName             the user already has a LoRA of that name
    │   ├── MonthlyLimitReached       the user's LoRAs this month are used up
    │   ├── BudgetExhausted           the platform's training budget this month is spent
    │   ├── UploadsClosed             the LoRA's dataset is frozen, or it is no longer pending
    │   ├── RatingRefused             not a completed LoRA, or the caller's own
    │   ├── ReportRefused             a second open report, or too many (``limit``)
    │   └── ModerationRefused         a moderation decision by someone who is not an admin
    ├── LoraNotFound
    ├── AuthError                     credentials missing or not acceptable
    ├── TemporalUnavailable           Temporal did not answer in time
    ├── MigrationError
    └── EmbeddedError                 the embedded dev stack could not start

Activities turn these into ``ApplicationError``s whose ``type`` is one of
``loraflow.contracts.errors.ErrorType``; workflows act on that type, never on a class name.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BudgetExhausted",
    "DatasetRejected",
    "DuplicateName",
    "EmbeddedError",
    "GpusExhausted",
    "ImageRejected",
    "InputRejected",
    "LoraNotFound",
    "LoraflowError",
    "MigrationError",
    "ModerationRefused",
    "MonthlyLimitReached",
    "ObjectExists",
    "ObjectNotFound",
    "ProviderError",
    "ProviderNotFound",
    "RatingRefused",
    "Refused",
    "ReportRefused",
    "StorageError",
    "TemporalUnavailable",
    "UnknownVideoModel",
    "UploadsClosed",
]


class LoraflowError(Exception):
    """Base of every exception loraflow raises on purpose."""


class ProviderError(LoraflowError):
    """The provider refused or failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class GpusExhausted(ProviderError):
    """No GPU type on the fallback list could be placed: time for the next provider."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class ProviderNotFound(ProviderError):
    """The provider has no such pod, training or file: trying again will not make one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class StorageError(LoraflowError):
    pass


class ObjectExists(StorageError):
    """The key already holds different bytes; objects are never overwritten."""


class ObjectNotFound(StorageError):
    """No object at that key."""


class InputRejected(LoraflowError, ValueError):
    """The caller's input is unusable; the message says why."""


class ImageRejected(InputRejected):
    """One image is unusable; ``filename`` and ``reason`` say which and why."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


class DatasetRejected(InputRejected):
    """The set of images as a whole is unusable (too few, too many, duplicates)."""


class UnknownVideoModel(InputRejected):
    """A video model the clip planner does not know."""


class Refused(LoraflowError):
    """A valid request the product says no to; the message says why and what to do, and
    ``code`` (an ``ErrorType`` value, where one crossed a workflow) names the rule."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class DuplicateName(Refused):
    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"you already have a LoRA named {name!r}")
        self.name = name


class MonthlyLimitReached(Refused):
    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message if not detail else f"{message} ({detail})")


class BudgetExhausted(Refused):
    """This month's training budget is spent; the message says from when trainings resume."""


class UploadsClosed(Refused):
    """The LoRA's dataset is frozen (its training started) or it is no longer pending."""


class RatingRefused(Refused):
    """The LoRA cannot be rated by the caller: it is not completed, or it is their own (``own``)."""

    def __init__(self, message: str, *, own: bool = False) -> None:
        super().__init__(message)
        self.own = own


class ReportRefused(Refused):
    """The caller already has an open report of the LoRA, or reached the hourly limit (``limit``)."""

    def __init__(self, message: str, *, limit: bool) -> None:
        super().__init__(message)
        self.limit = limit


class ModerationRefused(Refused):
    """A moderation decision by someone who is not an admin (the database's own check)."""


class LoraNotFound(LoraflowError):
    def __init__(self, lora_id: object) -> None:
        super().__init__(f"no LoRA with id {lora_id}")
        self.lora_id = lora_id


class AuthError(LoraflowError):
    """The request's credentials are missing or not acceptable; the message says why."""


class TemporalUnavailable(LoraflowError):
    """Temporal did not answer in time."""


class MigrationError(LoraflowError, RuntimeError):
    pass


class EmbeddedError(LoraflowError, RuntimeError):
    pass
