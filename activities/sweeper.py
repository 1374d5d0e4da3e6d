"""The orphan sweeper's activity: terminate pods nothing is watching over any more."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import psycopg
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from loraflow.compute import ComputeProvider
from loraflow.compute.runpod import NAME_PREFIX
from loraflow.logging import get_logger

if TYPE_CHECKING:  # the replicate package is in the `cloud` extra
    from loraflow.compute.replicate import ReplicateTrainer

log = get_logger(__name__)


class SweeperActivities:
    def __init__(
        self,
        *,
        providers: list[ComputeProvider],
        client: Client,
        replicate: ReplicateTrainer | None = None,
        dsn: str | None = None,
    ) -> None:
        self._providers = providers
        self._client = client
        self._replicate = replicate
        self._dsn = dsn

    @activity.defn(name="sweep_orphan_pods")
    async def sweep_orphan_pods(self, max_training_s: float) -> list[str]:
        """Terminate every loraflow pod whose training workflow is closed or unknown, and every
        pod older than ``max_training_s``; return their ids. Each kill is logged with its cost."""
        killed = []
        for provider in self._providers:
            for pod in await asyncio.to_thread(provider.list_pods):
                workflow_id = pod.name.removeprefix(NAME_PREFIX)
                reason = await self._orphaned(workflow_id)
                age = max(0.0, time.time() - pod.created_at)
                if reason is None and age > max_training_s:
                    reason = f"running {age / 3600:.1f} h, past the {max_training_s / 3600:.1f} h maximum"
                if reason is None:
                    continue
                await asyncio.to_thread(provider.terminate, pod.pod_id)
                log.warning(
                    "orphan_pod_terminated",
                    provider=provider.name,
                    pod_id=pod.pod_id,
                    workflow_id=workflow_id,
                    reason=reason,
                    age_s=round(age),
                    cost_usd=round(age / 3600 * pod.price_per_hour, 4),
                )
                killed.append(pod.pod_id)
                activity.heartbeat(pod.pod_id)
        if self._replicate is not None:
            killed += await self._sweep_replicate(self._replicate)
        return killed

    async def _sweep_replicate(self, replicate: ReplicateTrainer) -> list[str]:
        """Replicate trainings into our destination whose workflow is gone are cancelled
        (they would end by themselves, but bill until then)."""
        cancelled = []
        for training in await asyncio.to_thread(replicate.list_active):
            workflow_id = await asyncio.to_thread(self._workflow_of, training.id)
            reason = "no training record" if workflow_id is None else await self._orphaned(workflow_id)
            if reason is None:
                continue
            await asyncio.to_thread(replicate.cancel, training.id)
            log.warning("orphan_replicate_training_cancelled", training_id=training.id, reason=reason)
            cancelled.append(f"replicate:{training.id}")
        return cancelled

    def _workflow_of(self, training_id: str) -> str | None:
        with psycopg.connect(self._dsn or "") as conn:
            row = conn.execute(
                "SELECT lora_model_id FROM lora_training_jobs WHERE runpod_pod_id = %s",
                [f"replicate:{training_id}"],
            ).fetchone()
        return f"lora-train-{row[0]}" if row else None

    async def _orphaned(self, workflow_id: str) -> str | None:
        try:
            description = await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return "its workflow is unknown"
            raise
        if description.status != WorkflowExecutionStatus.RUNNING:
            name = description.status.name.lower() if description.status else "closed"
            return f"its workflow is {name}"
        return None
