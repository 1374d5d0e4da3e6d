"""The pod activities: create-pod, wait-ready, upload-images, run-training, poll, download,
cleanup. They speak to the compute provider and to the pod agent.

Each is idempotent (a retry after a crash or timeout does no harm and no double work) and
synchronous: they run on the worker's thread pool, so blocking I/O never starves heartbeats.
They pass storage keys, never local paths: the next activity may run on another worker.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import beating, heartbeating
from loraflow.compute import ComputeProvider, PodStatus
from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import (
    CheckpointInfo,
    CleanupPodInput,
    CreatePodInput,
    DownloadArtifactInput,
    MachineProgress,
    MachineReleased,
    PodHandle,
    PollTrainingInput,
    RunTrainingInput,
    StagedArtifact,
    UploadedImages,
    UploadImagesInput,
    WaitPodReadyInput,
)
from loraflow.contracts.names import pod_name, staged_artifact_key, training_job_id, training_log_key
from loraflow.errors import GpusExhausted, ProviderError
from loraflow.logging import get_logger
from loraflow.storage import Storage
from training_scripts import agent_protocol as wire

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = get_logger(__name__)
#: How often wait_pod_ready asks the provider (backoff within its rate limit) and the agent.
_DESCRIBE_FIRST_S, _DESCRIBE_MAX_S = 2.0, 10.0
_AGENT_FIRST_S, _AGENT_MAX_S = 0.2, 2.0
#: The longest error text carried into a workflow's history (Temporal caps failures' size): a
#: failed training's full reason and its trainer's log go to storage (``training_log_key``), and
#: the error names the key.
_MAX_ERROR = 2000


class PodActivities:
    def __init__(self, *, pool: ConnectionPool, storage: Storage, provider: ComputeProvider) -> None:
        self._pool = pool
        self._storage = storage
        self._provider = provider

    @activity.defn(name="create_pod")
    def create_pod(self, request: CreatePodInput) -> PodHandle:
        """Create the pod for this workflow, or find the one a previous attempt created, and
        record its id before anything waits on it."""
        try:
            with heartbeating("creating"):
                pod = self._provider.create(pod_name(request.workflow_id, request.attempt)).handle
        except ProviderError as exc:
            # The type lets the workflow tell "no GPU anywhere here" (GpusExhausted) from the rest.
            raise ApplicationError(
                str(exc),
                type=ErrorType.GPUS_EXHAUSTED if isinstance(exc, GpusExhausted) else ErrorType.PROVIDER,
                non_retryable=not exc.retryable,
            ) from exc
        with self._pool.connection() as conn:
            conn.execute(
                """INSERT INTO lora_training_jobs (id, lora_model_id, user_id, runpod_pod_id)
                   SELECT %s, id, user_id, %s FROM lora_models WHERE id = %s
                   ON CONFLICT (id) DO UPDATE SET runpod_pod_id = EXCLUDED.runpod_pod_id""",
                [training_job_id(request.workflow_id), pod.pod_id, request.lora_id],
            )
        log.info("pod_created", lora_id=request.lora_id, workflow_id=request.workflow_id, pod_id=pod.pod_id)
        return pod

    @activity.defn(name="wait_pod_ready")
    def wait_pod_ready(self, request: WaitPodReadyInput) -> PodHandle:
        """Until the agent itself answers (a running machine is not a ready agent; on RunPod the
        endpoint is not even known until the container runs). Returns the pod with its endpoint.

        The provider is asked with backoff (2 s growing to 10 s: a long image pull must not spend
        the provider's rate limit), the agent more often (it is ours). A pod the provider reports
        failed (RunPod's ERROR) will never be ready: it is terminated and the wait ends."""
        pod = request.pod
        endpoint = pod.endpoint or None
        describe_every, next_describe = _DESCRIBE_FIRST_S, 0.0
        agent_every = _AGENT_FIRST_S
        status = "unknown"
        while True:
            if endpoint is None or time.monotonic() >= next_describe:
                current = self._provider.describe(pod.pod_id)
                status = str(current.status)
                self._raise_if_never_ready(pod, current.status)
                endpoint = current.handle.endpoint or endpoint
                next_describe = time.monotonic() + describe_every
                describe_every = min(describe_every * 1.5, _DESCRIBE_MAX_S)
            if endpoint:
                ready = replace(pod, endpoint=endpoint)
                try:
                    if _agent(ready).get(wire.HEALTHZ_PATH, timeout=5).status_code == 200:
                        return ready
                except httpx.TransportError:
                    pass
            activity.heartbeat(status)
            if endpoint:
                time.sleep(agent_every)
                agent_every = min(agent_every * 1.5, _AGENT_MAX_S)
            else:
                time.sleep(max(0.0, next_describe - time.monotonic()))

    def _raise_if_never_ready(self, pod: PodHandle, status: PodStatus) -> None:
        if status in (PodStatus.terminated, PodStatus.exited):
            # Ended by someone else (the dev stack stopping, an operator, a preemption).
            raise ApplicationError(
                f"the training machine was lost before it was ready (pod {pod.pod_id} is {status})",
                type=ErrorType.POD_LOST,
                non_retryable=True,
            )
        if status == PodStatus.failed:
            self._provider.terminate(pod.pod_id)
            raise ApplicationError(
                f"pod {pod.pod_id} failed to start: {self._provider.name} reports it in an "
                "unrecoverable error state (it has been terminated)",
                type=ErrorType.POD_FAILED,
                non_retryable=True,
            )

    @activity.defn(name="cleanup_pod")
    def cleanup_pod(self, request: CleanupPodInput) -> MachineReleased:
        """Terminate the pod and confirm it is gone; raises (and so is retried) until it is.
        Returns the pod's billable seconds."""
        pod = request.pod
        with heartbeating("terminating"):
            self._provider.terminate(pod.pod_id)
            status = self._provider.describe(pod.pod_id).status
        if status != PodStatus.terminated:
            raise ApplicationError(f"pod {pod.pod_id} is still {status}")
        log.info("pod_terminated", pod_id=pod.pod_id)
        return MachineReleased(billed_s=max(0.0, time.time() - pod.created_at))

    # -- the agent -------------------------------------------------------------------------

    def _reaching(self, pod: PodHandle) -> AbstractContextManager[httpx.Client]:
        return reaching(self._provider, pod)

    @activity.defn(name="upload_images")
    def upload_images(self, request: UploadImagesInput) -> UploadedImages:
        with self._reaching(request.pod) as agent:
            for index, key in enumerate(request.keys):
                body = b"".join(self._storage.get(key))
                r = agent.put(wire.image_path(f"{index}.png"), content=body)
                raise_for_agent(r)
                activity.heartbeat(index)
        return UploadedImages(count=len(request.keys))

    @activity.defn(name="run_training")
    def run_training(self, request: RunTrainingInput) -> None:
        with self._reaching(request.pod) as agent, heartbeating("starting training"):
            train = wire.TrainRequest(run_id=request.run_id, params=request.params)
            raise_for_agent(agent.post(wire.TRAIN_PATH, json=dataclasses.asdict(train)))

    @activity.defn(name="poll_training")
    def poll_training(self, request: PollTrainingInput) -> MachineProgress:
        """One long poll: answers as soon as training ends, or after ``wait_s`` with the latest
        progress, which it also mirrors to lora_training_jobs."""
        # A worker that dies mid-poll is noticed by its heartbeat timeout.
        activity.heartbeat(request.after_version)
        with self._reaching(request.pod) as agent:
            r = agent.get(
                wire.PROGRESS_PATH,
                params={"after": request.after_version, "wait_s": request.wait_s, "terminal_only": True},
                timeout=request.wait_s + 30,
            )
            raise_for_agent(r)
            agent_progress = wire.progress_from_json(r.json())
            error = agent_progress.error
            if agent_progress.state == wire.AgentState.FAILED:
                error = self._keep_log(agent, request, error or "")
        progress = MachineProgress(
            state=str(agent_progress.state),
            version=agent_progress.version,
            phase=agent_progress.phase,
            step=agent_progress.step,
            total_steps=agent_progress.total_steps,
            loss=agent_progress.loss,
            eta_s=agent_progress.eta_s,
            error=error,
            sha256=agent_progress.sha256,
            size=agent_progress.size,
            checkpoints=[
                CheckpointInfo(c.name, c.step, c.sha256, c.size) for c in wire.checkpoints_of(agent_progress)
            ],
        )
        percent = agent_progress.percent
        with self._pool.connection() as conn:
            conn.execute(
                """UPDATE lora_training_jobs SET training_progress = %s, estimated_remaining = %s,
                          error_message = %s
                    WHERE id = %s""",
                [
                    min(percent, 100),
                    None if progress.eta_s is None else round(progress.eta_s),
                    progress.error,
                    training_job_id(request.workflow_id),
                ],
            )
        return progress

    def _keep_log(self, agent: httpx.Client, request: PollTrainingInput, reason: str) -> str:
        """Store the failure's full reason and the trainer's log; the reason, capped, naming the
        key. Best effort: a log that cannot be fetched or kept leaves the capped reason alone."""
        key = training_log_key(request.workflow_id, request.pod.pod_id)
        try:
            trainer_log = agent.get(wire.LOG_PATH, timeout=30)
            raise_for_agent(trainer_log)
            self._storage.delete(key)  # a retried poll keeps the latest
            self._storage.put(key, [reason.encode(), b"\n\n--- trainer log ---\n", trainer_log.content])
        except Exception as exc:  # the reason still reaches the user
            log.warning("training_log_not_kept", workflow_id=request.workflow_id, error=repr(exc))
            return reason[:_MAX_ERROR]
        suffix = f" [full log: {key}]"
        return reason[: _MAX_ERROR - len(suffix)] + suffix

    @activity.defn(name="download_artifact")
    def download_artifact(self, request: DownloadArtifactInput) -> StagedArtifact:
        """Stream the artifact from the agent into staging storage, checking its sha256."""
        key = staged_artifact_key(request.lora_id, request.sha256)
        # A stalled stream times out (and stops the heartbeats) within a minute, not ten.
        stalled = httpx.Timeout(60, connect=10)
        which = {} if request.checkpoint is None else {"checkpoint": request.checkpoint}
        with (
            self._reaching(request.pod) as agent,
            agent.stream("GET", wire.ARTIFACT_PATH, params=which, timeout=stalled) as r,
        ):
            raise_for_agent(r)
            stored = self._storage.put(key, beating(r.iter_bytes(1 << 20)))
        if stored.sha256 != request.sha256:
            self._storage.delete(key)
            raise ApplicationError(
                f"downloaded LoRA has sha256 {stored.sha256}, the pod said {request.sha256}"
            )
        return StagedArtifact(key, stored.size, stored.sha256)


@contextmanager
def reaching(provider: ComputeProvider, pod: PodHandle) -> Iterator[httpx.Client]:
    """A client for the pod's agent. When the agent does not answer, the provider is asked
    whether the machine is still there: a lost one fails at once (``POD_LOST``), not after
    minutes of retries ending in ``[Errno 111] Connection refused``."""
    try:
        with _agent(pod) as agent:
            yield agent
    except httpx.TransportError as exc:
        _raise_if_lost(provider, pod)
        raise ApplicationError(f"the pod's agent did not answer ({type(exc).__name__}); retrying") from exc


def _raise_if_lost(provider: ComputeProvider, pod: PodHandle) -> None:
    """The agent did not answer: ask the provider whether the machine is still there. A pod
    that stopped, failed or vanished (agent killed, spot pod preempted, host gone) is lost:
    ``POD_LOST``, which the workflow answers with a new pod, not the user's failure."""
    status = provider.describe(pod.pod_id).status
    if status in (PodStatus.running, PodStatus.starting):
        return
    raise ApplicationError(
        f"the training machine was lost (pod {pod.pod_id} is {status})",
        type=ErrorType.POD_LOST,
        non_retryable=True,
    )


def _agent(pod: PodHandle) -> httpx.Client:
    return httpx.Client(
        base_url=pod.endpoint or "", headers={"Authorization": f"Bearer {pod.token}"}, timeout=30
    )


def raise_for_agent(r: httpx.Response) -> None:
    if r.status_code < 400:
        return
    if r.is_stream_consumed is False:
        r.read()
    detail = r.text[:500]
    # 4xx from the agent means our request is wrong for this pod: retrying cannot help.
    raise ApplicationError(
        f"pod agent answered {r.status_code}: {detail}", non_retryable=400 <= r.status_code < 500
    )
