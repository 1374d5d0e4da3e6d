"""The orphan sweeper's activity: terminate pods nothing is watching over any more."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.replicate import lora_id_of
from loraflow.compute import ComputeProvider
from loraflow.compute.replicate import ReplicateTrainer
from loraflow.compute.replicate_api import Training
from loraflow.contracts.maintenance import SweepOrphanPodsInput, SweptOrphans
from loraflow.contracts.names import (
    REPLICATE_HANDLE_PREFIX,
    replicate_handle,
    train_workflow_id,
    training_job_id,
    workflow_of_pod,
)
from loraflow.errors import ProviderNotFound
from loraflow.logging import get_logger

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = get_logger(__name__)
#: A training younger than this is not called a duplicate: its start activity may not have
#: recorded it yet (it records right after Replicate answers; this is ample).
_RECORD_GRACE_S = 15 * 60.0


class SweeperActivities:
    def __init__(
        self,
        *,
        providers: list[ComputeProvider],
        client: Client,
        replicate: ReplicateTrainer | None = None,
        pool: ConnectionPool | None = None,
    ) -> None:
        self._providers = providers
        self._client = client
        self._replicate = replicate
        self._pool = pool  # where Replicate trainings are recorded; without it, found by dataset URL

    @activity.defn(name="sweep_orphan_pods")
    async def sweep_orphan_pods(self, request: SweepOrphanPodsInput) -> SweptOrphans:
        """Terminate every loraflow pod whose training workflow is closed or unknown, and every
        pod older than ``max_training_s``; return their ids. Each kill is logged with its cost."""
        max_training_s = request.max_training_s
        killed = []
        for provider in self._providers:
            for state in await asyncio.to_thread(provider.list_pods):
                pod = state.handle
                workflow_id = workflow_of_pod(pod.name)
                if workflow_id is None:  # not one of ours
                    continue
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
            killed += await self._sweep_replicate(self._replicate, max_training_s)
        return SweptOrphans(terminated=killed)

    async def _sweep_replicate(self, replicate: ReplicateTrainer, max_training_s: float) -> list[str]:
        """Cancel our running Replicate trainings that nothing follows: their workflow is gone,
        their workflow follows another training (a duplicate a lost create left), or they run
        past the maximum time. They would end by themselves, but bill until then.

        Trainings carry no destination: ours are the ones recorded in lora_training_jobs, or on
        our trainer's model with our dataset path in ``input_images``. Others are never touched."""
        cancelled = []
        for training in await asyncio.to_thread(replicate.list_active):
            workflow_id = await asyncio.to_thread(self._workflow_of, training, replicate)
            if workflow_id is None:
                continue
            reason = await self._orphaned(workflow_id)
            age = time.time() - training.created_at.timestamp() if training.created_at else 0.0
            if reason is None and age > _RECORD_GRACE_S:
                followed = await asyncio.to_thread(self._recorded_training, workflow_id)
                if followed is not None and followed != training.id:
                    reason = f"a duplicate: its workflow follows {replicate_handle(followed)}"
            if reason is None and age > max_training_s:
                reason = f"running {age / 3600:.1f} h, past the {max_training_s / 3600:.1f} h maximum"
            if reason is None:
                continue
            try:
                await asyncio.to_thread(replicate.cancel, training.id)
            except ProviderNotFound:
                continue  # gone in between
            log.warning(
                "orphan_replicate_training_cancelled",
                training_id=training.id,
                workflow_id=workflow_id,
                reason=reason,
                age_s=round(age),
            )
            cancelled.append(replicate_handle(training.id))
            activity.heartbeat(training.id)
        return cancelled

    def _workflow_of(self, training: Training, replicate: ReplicateTrainer) -> str | None:
        """The workflow a training belongs to, if it is ours: by our record of it, else by the
        LoRA its dataset URL names (a training whose start never got to record it)."""
        if self._pool is not None:
            with self._pool.connection() as conn:
                row = conn.execute(
                    "SELECT lora_model_id FROM lora_training_jobs WHERE runpod_pod_id = %s",
                    [replicate_handle(training.id)],
                ).fetchone()
            if row:
                return train_workflow_id(str(row[0]))
        lora_id = lora_id_of(training) if training.model == replicate.version.model else None
        return train_workflow_id(lora_id) if lora_id else None

    def _recorded_training(self, workflow_id: str) -> str | None:
        """The Replicate training a workflow's record names, if any."""
        if self._pool is None:
            return None
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT runpod_pod_id FROM lora_training_jobs WHERE id = %s", [training_job_id(workflow_id)]
            ).fetchone()
        recorded = row[0] if row else None
        if recorded and recorded.startswith(REPLICATE_HANDLE_PREFIX):
            return str(recorded.removeprefix(REPLICATE_HANDLE_PREFIX))
        return None

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
