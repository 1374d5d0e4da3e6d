"""The training activities: prepare-dataset, create-pod, wait-ready, upload-images, run-training,
poll, download, cleanup, store, validate, record.

Each is idempotent (a retry after a crash or timeout does no harm and no double work) and
synchronous: they run on the worker's thread pool, so blocking I/O never starves heartbeats.
They pass storage keys, never local paths: the next activity may run on another worker.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from dataclasses import asdict, replace
from decimal import Decimal
from typing import Any

import httpx
import psycopg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.compute import ComputeProvider, PodStatus
from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import (
    AgentProgress,
    PodRef,
    StagedArtifact,
    StoredLora,
    TrainingOutcome,
    ValidationRequest,
    ValidationScore,
)
from loraflow.db import budget
from loraflow.domain.images import inspect_image, normalise_image
from loraflow.errors import GpusExhausted, ImageRejected, ObjectNotFound, ProviderError
from loraflow.logging import get_logger
from loraflow.settings import Settings
from loraflow.storage import Storage

log = get_logger(__name__)
#: safetensors refuses headers over 100 MiB; so do we.
_MAX_HEADER = 100 * 1024 * 1024
#: How often wait_pod_ready asks the provider (backoff within its rate limit) and the agent.
_DESCRIBE_FIRST_S, _DESCRIBE_MAX_S = 2.0, 15.0
_AGENT_FIRST_S, _AGENT_MAX_S = 0.2, 2.0
_JOB_NAMESPACE = uuid.UUID("6c6f7261-666c-6f77-0000-000000000001")


def job_id_for(workflow_id: str) -> str:
    """One lora_training_jobs row per workflow, with an id a retry computes again."""
    return str(uuid.uuid5(_JOB_NAMESPACE, workflow_id))


class TrainingActivities:
    def __init__(
        self,
        *,
        dsn: str,
        storage: Storage,
        provider: ComputeProvider,
        min_image_side: int,
        settings: Settings | None = None,
    ) -> None:
        self._settings = settings
        self._dsn = dsn
        self._storage = storage
        self._provider = provider
        self._min_side = min_image_side

    def _db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._dsn, autocommit=True)

    # -- dataset ---------------------------------------------------------------------------

    @activity.defn(name="prepare_dataset")
    def prepare_dataset(self, lora_id: str, image_keys: list[str]) -> list[str]:
        """Check every image again (the bytes in storage are what trains) and stage normalised
        PNGs under lora-staging/{lora_id}/dataset/. Bad data is not retryable."""
        staged = []
        for index, key in enumerate(image_keys):
            try:
                data = b"".join(self._storage.get(key))
            except ObjectNotFound as exc:
                raise ApplicationError(f"image {key} is missing from storage", non_retryable=True) from exc
            try:
                inspect_image(key.rsplit("/", 1)[-1], data, min_side=self._min_side)
            except ImageRejected as exc:
                raise ApplicationError(str(exc), type=ErrorType.BAD_IMAGE, non_retryable=True) from exc
            target = f"lora-staging/{lora_id}/dataset/{index}.png"
            self._storage.put(target, [normalise_image(data)])
            staged.append(target)
            activity.heartbeat(index)
        return staged

    # -- pods ------------------------------------------------------------------------------

    @activity.defn(name="create_pod")
    def create_pod(self, lora_id: str, workflow_id: str) -> PodRef:
        """Create the pod for this workflow, or find the one a previous attempt created, and
        record its id before anything waits on it."""
        name = "lf-" + workflow_id
        try:
            pod = self._provider.create(name)
        except ProviderError as exc:
            # The type lets the workflow tell "no GPU anywhere here" (GpusExhausted) from the rest.
            raise ApplicationError(
                str(exc),
                type=ErrorType.GPUS_EXHAUSTED if isinstance(exc, GpusExhausted) else ErrorType.PROVIDER,
                non_retryable=not exc.retryable,
            ) from exc
        with self._db() as conn:
            conn.execute(
                """INSERT INTO lora_training_jobs (id, lora_model_id, user_id, runpod_pod_id)
                   SELECT %s, id, user_id, %s FROM lora_models WHERE id = %s
                   ON CONFLICT (id) DO UPDATE SET runpod_pod_id = EXCLUDED.runpod_pod_id""",
                [job_id_for(workflow_id), pod.pod_id, lora_id],
            )
        log.info("pod_created", lora_id=lora_id, workflow_id=workflow_id, pod_id=pod.pod_id)
        return PodRef(
            pod.provider,
            pod.pod_id,
            pod.name,
            pod.endpoint or "",
            pod.token,
            pod.price_per_hour,
            pod.created_at,
        )

    @activity.defn(name="wait_pod_ready")
    def wait_pod_ready(self, pod: PodRef) -> PodRef:
        """Until the agent itself answers (a running machine is not a ready agent; on RunPod the
        endpoint is not even known until the container runs). Returns the pod with its endpoint.

        The provider is asked with backoff (2 s growing to 15 s: a long image pull must not spend
        the provider's rate limit), the agent more often (it is ours). A pod the provider reports
        failed (RunPod's ERROR) will never be ready: it is terminated and the wait ends."""
        endpoint = pod.endpoint or None
        describe_every, next_describe = _DESCRIBE_FIRST_S, 0.0
        agent_every = _AGENT_FIRST_S
        status = "unknown"
        while True:
            if endpoint is None or time.monotonic() >= next_describe:
                current = self._provider.describe(pod.pod_id)
                status = str(current.status)
                if current.status == PodStatus.terminated:
                    raise ApplicationError(
                        f"pod {pod.pod_id} is gone", type=ErrorType.POD_GONE, non_retryable=True
                    )
                if current.status == PodStatus.failed:
                    self._provider.terminate(pod.pod_id)
                    raise ApplicationError(
                        f"pod {pod.pod_id} failed to start: {self._provider.name} reports it in an "
                        "unrecoverable error state (it has been terminated)",
                        type=ErrorType.POD_FAILED,
                        non_retryable=True,
                    )
                endpoint = current.endpoint or endpoint
                next_describe = time.monotonic() + describe_every
                describe_every = min(describe_every * 1.5, _DESCRIBE_MAX_S)
            if endpoint:
                ready = replace(pod, endpoint=endpoint)
                try:
                    if _agent(ready).get("/healthz", timeout=5).status_code == 200:
                        return ready
                except httpx.TransportError:
                    pass
            activity.heartbeat(status)
            if endpoint:
                time.sleep(agent_every)
                agent_every = min(agent_every * 1.5, _AGENT_MAX_S)
            else:
                time.sleep(max(0.0, next_describe - time.monotonic()))

    @activity.defn(name="cleanup_pod")
    def cleanup_pod(self, pod: PodRef) -> float:
        """Terminate the pod and confirm it is gone; raises (and so is retried) until it is.
        Returns the pod's billable seconds."""
        self._provider.terminate(pod.pod_id)
        status = self._provider.describe(pod.pod_id).status
        if status != PodStatus.terminated:
            raise ApplicationError(f"pod {pod.pod_id} is still {status}")
        log.info("pod_terminated", pod_id=pod.pod_id)
        return max(0.0, time.time() - pod.created_at)

    # -- the agent -------------------------------------------------------------------------

    @activity.defn(name="upload_images")
    def upload_images(self, pod: PodRef, keys: list[str]) -> int:
        with _agent(pod) as agent:
            for index, key in enumerate(keys):
                body = b"".join(self._storage.get(key))
                r = agent.put(f"/images/{index}.png", content=body)
                _raise_for_agent(r)
                activity.heartbeat(index)
        return len(keys)

    @activity.defn(name="run_training")
    def run_training(self, pod: PodRef, run_id: str, params: dict[str, Any]) -> None:
        with _agent(pod) as agent:
            _raise_for_agent(agent.post("/train", json={"run_id": run_id, "params": params}))

    @activity.defn(name="poll_training")
    def poll_training(self, workflow_id: str, pod: PodRef, after: int, wait_s: float) -> AgentProgress:
        """One long poll: answers as soon as training ends, or after ``wait_s`` with the latest
        progress, which it also mirrors to lora_training_jobs."""
        activity.heartbeat(after)  # a worker that dies mid-poll is noticed by its heartbeat timeout
        with _agent(pod) as agent:
            r = agent.get(
                "/progress",
                params={"after": after, "wait_s": wait_s, "terminal_only": True},
                timeout=wait_s + 30,
            )
            _raise_for_agent(r)
        data = r.json()
        progress = AgentProgress(**{k: data.get(k) for k in AgentProgress.__dataclass_fields__ if k in data})
        percent = int(100 * progress.step / progress.total_steps) if progress.total_steps else 0
        with self._db() as conn:
            conn.execute(
                """UPDATE lora_training_jobs SET training_progress = %s, estimated_remaining = %s,
                          error_message = %s
                    WHERE id = %s""",
                [
                    min(percent, 100),
                    None if progress.eta_s is None else round(progress.eta_s),
                    progress.error,
                    job_id_for(workflow_id),
                ],
            )
        return progress

    @activity.defn(name="download_artifact")
    def download_artifact(self, lora_id: str, pod: PodRef, expected_sha256: str) -> StagedArtifact:
        """Stream the artifact from the agent into staging storage, checking its sha256."""
        key = f"lora-staging/{lora_id}/{expected_sha256}.safetensors"
        with _agent(pod) as agent, agent.stream("GET", "/artifact", timeout=600) as r:
            _raise_for_agent(r)
            stored = self._storage.put(key, r.iter_bytes(1 << 20))
        if stored.sha256 != expected_sha256:
            self._storage.delete(key)
            raise ApplicationError(
                f"downloaded LoRA has sha256 {stored.sha256}, the pod said {expected_sha256}"
            )
        return StagedArtifact(key, stored.size, stored.sha256)

    # -- store, validate, record ---------------------------------------------------------

    @activity.defn(name="store_lora")
    def store_lora(self, lora_id: str, staged: StagedArtifact, trigger_word: str) -> StoredLora:
        """Check the safetensors header, copy it to lora-models/ (never overwriting) and record it."""
        metadata = _safetensors_metadata(self._safetensors_head(staged), staged.size)
        key = f"lora-models/{lora_id}/{staged.sha256}.safetensors"
        stored = self._storage.put(key, self._storage.get(staged.key))
        if stored.sha256 != staged.sha256:
            raise ApplicationError("stored LoRA does not match the downloaded one")
        url = self._storage.url(key)
        with self._db() as conn:
            conn.execute(
                """UPDATE lora_models SET storage_path = %s, storage_url = %s, file_size = %s, sha256 = %s,
                          base_model = %s, trigger_word = %s
                    WHERE id = %s""",
                [
                    key,
                    url,
                    stored.size,
                    stored.sha256,
                    metadata.get("loraflow.base_model", "sdxl"),
                    trigger_word,
                    lora_id,
                ],
            )
        return StoredLora(key, url, stored.size, stored.sha256)

    def _safetensors_head(self, staged: StagedArtifact) -> bytes:
        """The file's first 8 bytes and its whole JSON header (a real SDXL LoRA's header runs past
        64 KiB), read without loading the tensors; at most the 100 MiB safetensors allows."""
        want = 1 << 16
        while True:
            head = b"".join(_take(self._storage.get(staged.key, chunk_size=1 << 16), want))
            needed = 8 + _header_length(head)
            if len(head) >= needed or len(head) < want or needed > _MAX_HEADER + 8:
                return head
            want = needed

    @activity.defn(name="validate_image")
    def validate_image(self, request: ValidationRequest) -> ValidationScore:
        from loraflow.ml import validation

        activity.heartbeat("generating")
        return validation.score_one(request, self._storage)

    @activity.defn(name="record_outcome")
    def record_outcome(self, workflow_id: str, outcome: TrainingOutcome) -> None:
        """The final record: status, validation, cost (in lora_models and job_costs). Idempotent."""
        urls = [s.image_url for s in outcome.scores] or None
        passed = outcome.status == "completed"
        cost = Decimal(str(round(outcome.cost_usd, 4)))
        with self._db() as conn:
            with conn.transaction():
                conn.execute(
                    """UPDATE lora_models
                          SET training_status = %s, error_message = %s, validation_passed = %s,
                              validation_image_urls = coalesce(%s, validation_image_urls), training_cost = %s,
                              completed_at = now()
                        WHERE id = %s AND training_status NOT IN ('completed', 'failed')""",
                    [outcome.status, outcome.error, passed, urls, cost, outcome.lora_id],
                )
                conn.execute(
                    """UPDATE lora_training_jobs
                          SET completed_at = coalesce(completed_at, now()), error_message = %s,
                              training_progress = CASE WHEN %s THEN 100 ELSE training_progress END
                        WHERE id = %s""",
                    [outcome.error, passed, job_id_for(workflow_id)],
                )
                if outcome.pod_seconds > 0:
                    conn.execute(
                        """INSERT INTO job_costs (id, lora_model_id, service, cost)
                           VALUES (%s, %s, 'lora_training', %s) ON CONFLICT (id) DO NOTHING""",
                        [job_id_for(workflow_id), outcome.lora_id, cost],
                    )
            if outcome.pod_seconds > 0 and self._settings is not None:
                budget.alert_if_crossed(conn, self._settings)  # after the commit: it counts this cost
        log.info("training_recorded", workflow_id=workflow_id, lora_id=outcome.lora_id, **_brief(outcome))


def _brief(outcome: TrainingOutcome) -> dict[str, Any]:
    data = asdict(outcome)
    return {k: data[k] for k in ("status", "error", "cost_usd", "pod_seconds")}


def _agent(pod: PodRef) -> httpx.Client:
    return httpx.Client(base_url=pod.endpoint, headers={"Authorization": f"Bearer {pod.token}"}, timeout=30)


def _raise_for_agent(r: httpx.Response) -> None:
    if r.status_code < 400:
        return
    if r.is_stream_consumed is False:
        r.read()
    detail = r.text[:500]
    # 4xx from the agent means our request is wrong for this pod: retrying cannot help.
    raise ApplicationError(
        f"pod agent answered {r.status_code}: {detail}", non_retryable=400 <= r.status_code < 500
    )


def _header_length(head: bytes) -> int:
    """A safetensors file starts with its JSON header's length, 8 bytes little-endian."""
    return struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0


def _take(chunks: Any, limit: int) -> Any:
    taken = 0
    for chunk in chunks:
        yield chunk
        taken += len(chunk)
        if taken >= limit:
            return


def _safetensors_metadata(head: bytes, size: int) -> dict[str, str]:
    """Validate a safetensors header enough to trust the file: length, JSON, LoRA tensors."""
    if len(head) < 8:
        raise ApplicationError("the LoRA file is too short to be safetensors", non_retryable=True)
    (length,) = struct.unpack("<Q", head[:8])
    if length > min(size - 8, _MAX_HEADER):
        raise ApplicationError("the LoRA file's header is larger than the file", non_retryable=True)
    raw = head[8 : 8 + length]
    if len(raw) < length:
        raise ApplicationError("the LoRA file's header is too large to check", non_retryable=True)
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApplicationError("the LoRA file's header is not JSON", non_retryable=True) from exc
    # Imported here: only this function knows the trained-token format (loraflow.ml.validation).
    from loraflow.ml.validation import EMBEDDING_PREFIX, EMBEDDING_TARGETS, token_map_of

    tensors = [k for k in header if k != "__metadata__"]
    embeddings = {k for k in tensors if k.startswith(EMBEDDING_PREFIX)}
    lora = [k for k in tensors if k not in embeddings]
    if not lora or not all("lora" in k for k in lora):
        raise ApplicationError("the file holds no LoRA tensors", non_retryable=True)
    metadata = header.get("__metadata__", {})
    try:
        token_map = token_map_of(metadata)
    except ValueError as exc:
        raise ApplicationError(f"the LoRA file's trained tokens: {exc}", non_retryable=True) from exc
    # Trained tokens come whole (a map and one embedding per text encoder) or not at all.
    if bool(token_map) != bool(embeddings) or (
        embeddings and embeddings != {EMBEDDING_PREFIX + name for name in EMBEDDING_TARGETS}
    ):
        raise ApplicationError("the LoRA file's trained tokens are incomplete", non_retryable=True)
    return metadata
