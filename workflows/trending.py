"""RefreshTrendingWorkflow: run hourly by a Temporal Schedule (``loraflow.temporal.schedules``);
keeps ``sort=trending`` (uses in the last 30 days) exact to the hour."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities
    from loraflow.contracts.maintenance import RefreshTrendingInput


@workflow.defn(name="RefreshTrendingWorkflow")
class RefreshTrendingWorkflow:
    @workflow.run
    async def run(self, request: RefreshTrendingInput) -> int:
        """How many LoRAs' 30-day use counts changed."""
        refreshed = await workflow.execute_activity_method(
            MaintenanceActivities.refresh_trending,
            request,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10),
        )
        return refreshed.loras
