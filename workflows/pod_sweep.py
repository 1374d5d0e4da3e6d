"""SweepOrphanPodsWorkflow: run every 10 minutes by a Temporal Schedule (``loraflow.temporal.schedules``).
A leaked pod bills until someone notices; this is the someone."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn(name="SweepOrphanPodsWorkflow")
class SweepOrphanPodsWorkflow:
    @workflow.run
    async def run(self, max_training_s: float) -> list[str]:
        return await workflow.execute_activity(
            "sweep_orphan_pods",
            max_training_s,
            result_type=list[str],
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )
