"""SweepOrphanPodsWorkflow: run every 10 minutes by a Temporal Schedule (``loraflow.temporal.schedules``).
A leaked pod bills until someone notices; this is the someone."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.sweeper import SweeperActivities
    from loraflow.contracts.maintenance import SweepOrphanPodsInput


@workflow.defn(name="SweepOrphanPodsWorkflow")
class SweepOrphanPodsWorkflow:
    @workflow.run
    async def run(self, request: SweepOrphanPodsInput) -> list[str]:
        """The ids of the pods (and ``replicate:{id}`` trainings) it ended."""
        swept = await workflow.execute_activity_method(
            SweeperActivities.sweep_orphan_pods,
            request,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )
        return swept.terminated
