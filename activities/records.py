"""Small activities that keep the database record in step with the workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.contracts.lora_training import StatusChange
from loraflow.contracts.status import TrainingStatus

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool


class RecordActivities:
    def __init__(self, *, pool: ConnectionPool) -> None:
        self._pool = pool

    @activity.defn(name="record_status")
    def record_status(self, change: StatusChange) -> None:
        """Set the LoRA's training_status. Idempotent: setting the same status again is a no-op,
        and a finished LoRA (completed/failed) is never moved back."""
        try:
            status = TrainingStatus(change.status)
        except ValueError:
            raise ApplicationError(f"unknown status {change.status!r}", non_retryable=True) from None
        with self._pool.connection() as conn:
            conn.execute(
                """UPDATE lora_models
                      SET training_status = %s,
                          error_message = coalesce(%s, error_message),
                          completed_at = CASE WHEN %s THEN now() END
                    WHERE id = %s AND training_status NOT IN ('completed', 'failed')
                      AND training_status IS DISTINCT FROM %s""",
                [status, change.error_message, status.finished, change.lora_id, status],
            )
