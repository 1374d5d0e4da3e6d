"""PurgeValidationImagesWorkflow: run daily by a Temporal Schedule (``loraflow.temporal.schedules``);
deletes validation images once they are older than the retention (30 days by default)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn(name="PurgeValidationImagesWorkflow")
class PurgeValidationImagesWorkflow:
    @workflow.run
    async def run(self, max_age_days: int) -> int:
        return await workflow.execute_activity(
            "purge_validation_images",
            max_age_days,
            result_type=int,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=20),
        )
