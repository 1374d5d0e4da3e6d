"""The Replicate path of TrainLoraWorkflow (when RunPod has no GPU): start, poll, download,
cancel. Each is idempotent, like the pod activities they stand in for."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import zipfile
from typing import Any

import httpx
import psycopg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.training import job_id_for
from loraflow.compute import ProviderError
from loraflow.compute.replicate import TERMINAL, ReplicateTrainer
from loraflow.logging import get_logger
from loraflow.storage import Storage
from loraflow.training_types import AgentProgress, PodRef, StagedArtifact

log = get_logger(__name__)


class ReplicateActivities:
    def __init__(self, *, dsn: str, storage: Storage, trainer: ReplicateTrainer) -> None:
        self._dsn = dsn
        self._storage = storage
        self._trainer = trainer

    @activity.defn(name="replicate_start")
    def replicate_start(
        self, lora_id: str, workflow_id: str, dataset: list[str], params: dict[str, Any]
    ) -> PodRef:
        """Zip the dataset (deterministically: a retry writes the same bytes), start the
        training (or find the one a lost attempt started), and record its id."""
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
            for index, key in enumerate(dataset):
                info = zipfile.ZipInfo(f"{index}.png", date_time=(2020, 1, 1, 0, 0, 0))
                z.writestr(info, b"".join(self._storage.get(key)))
        zip_key = f"lora-staging/{lora_id}/replicate-dataset.zip"
        self._storage.put(zip_key, [archive.getvalue()])
        try:
            training_id = self._trainer.start(self._storage.url(zip_key), params)
        except ProviderError as exc:
            raise ApplicationError(str(exc), non_retryable=not exc.retryable) from exc
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            conn.execute(
                """INSERT INTO lora_training_jobs (id, lora_model_id, user_id, runpod_pod_id)
                   SELECT %s, id, user_id, %s FROM lora_models WHERE id = %s
                   ON CONFLICT (id) DO UPDATE SET runpod_pod_id = EXCLUDED.runpod_pod_id""",
                [job_id_for(workflow_id), f"replicate:{training_id}", lora_id],
            )
        log.info(
            "replicate_training_started", lora_id=lora_id, workflow_id=workflow_id, training_id=training_id
        )
        return PodRef(
            "replicate", training_id, workflow_id, "", "", self._trainer.price_per_hour, time.time()
        )

    @activity.defn(name="replicate_poll")
    def replicate_poll(self, training: PodRef, wait_s: float) -> AgentProgress:
        """The training's state, returned when it ends or after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            current = self._trainer.get(training.pod_id)
            activity.heartbeat(current.status)
            if current.status in TERMINAL or time.monotonic() >= deadline:
                state = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}.get(
                    current.status, "training"
                )
                return AgentProgress(state=state, phase=current.status, error=current.error)
            time.sleep(1.0)

    @activity.defn(name="replicate_download")
    def replicate_download(self, lora_id: str, training: PodRef) -> StagedArtifact:
        """Stream ``output.weights`` into staging; from a tar (as the SDXL trainer ships it),
        its ``.safetensors`` member."""
        current = self._trainer.get(training.pod_id)
        if current.status != "succeeded" or not current.weights_url:
            raise ApplicationError(f"Replicate training {training.pod_id} has no weights", non_retryable=True)
        key = f"lora-staging/{lora_id}/replicate-{training.pod_id}.safetensors"
        digest = hashlib.sha256()
        size = 0

        def counted(chunks: Any) -> Any:
            nonlocal size
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        with httpx.stream(
            "GET", current.weights_url, timeout=httpx.Timeout(30, read=300), follow_redirects=True
        ) as r:
            r.raise_for_status()
            if current.weights_url.split("?")[0].endswith(".tar"):
                with tarfile.open(fileobj=_Reader(r.iter_bytes(1 << 20)), mode="r|*") as tar:
                    for member in tar:
                        if member.name.endswith(".safetensors") and (f := tar.extractfile(member)):
                            self._storage.put(key, counted(iter(lambda: f.read(1 << 20), b"")))
                            break
                    else:
                        raise ApplicationError(
                            "the trained weights hold no .safetensors file", non_retryable=True
                        )
            else:
                self._storage.put(key, counted(r.iter_bytes(1 << 20)))
        return StagedArtifact(key, size, digest.hexdigest())

    @activity.defn(name="replicate_cancel")
    def replicate_cancel(self, training: PodRef) -> float:
        """Cleanup: cancel unless it has ended; raises (so is retried) until Replicate says it
        has. Returns the seconds billed (approximately: since it was started)."""
        current = self._trainer.cancel(training.pod_id)
        if current.status not in TERMINAL:
            raise ApplicationError(f"Replicate training {training.pod_id} is still {current.status}")
        return max(0.0, time.time() - training.created_at)


class _Reader(io.RawIOBase):
    """A file object over an iterator of chunks, for tarfile's streaming mode."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n
