"""A LoRA's training status: the one vocabulary of the database (``lora_models.training_status``),
the workflows, the API and the platform client. Standard library only."""

from __future__ import annotations

import enum

__all__ = ["TrainingStatus"]


class TrainingStatus(enum.StrEnum):
    """pending → training → validating → completed | failed."""

    PENDING = "pending"
    TRAINING = "training"
    VALIDATING = "validating"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TrainingStatus.COMPLETED, TrainingStatus.FAILED)
