"""Small activities that keep the database record in step with the workflow."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.db import as_service
from loraflow.db.library import TRAINING_STATUSES


@dataclass(frozen=True)
class StatusChange:
    lora_id: str
    status: str
    error_message: str | None = None


class RecordActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn(name="record_status")
    async def record_status(self, change: StatusChange) -> None:
        """Set the LoRA's training_status. Idempotent: setting the same status again is a no-op,
        and a finished LoRA (completed/failed) is never moved back."""
        if change.status not in TRAINING_STATUSES:
            raise ApplicationError(f"unknown status {change.status!r}", non_retryable=True)
        async with as_service(self._pool) as conn:
            await conn.execute(
                """UPDATE lora_models
                      SET training_status = %s,
                          error_message = coalesce(%s, error_message),
                          completed_at = CASE WHEN %s IN ('completed', 'failed') THEN now() END
                    WHERE id = %s AND training_status NOT IN ('completed', 'failed')
                      AND training_status IS DISTINCT FROM %s""",
                [change.status, change.error_message, change.status, change.lora_id, change.status],
            )
