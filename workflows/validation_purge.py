"""PurgeValidationImagesWorkflow: run daily by a Temporal Schedule (``loraflow.temporal.schedules``);
deletes validation images once they are older than the retention (30 days by default)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities
    from loraflow.contracts.maintenance import PurgeValidationImagesInput


@workflow.defn(name="PurgeValidationImagesWorkflow")
class PurgeValidationImagesWorkflow:
    @workflow.run
    async def run(self, request: PurgeValidationImagesInput) -> int:
        """How many LoRAs' validation images it deleted."""
        purged = await workflow.execute_activity_method(
            MaintenanceActivities.purge_validation_images,
            request,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=20),
        )
        return purged.loras
