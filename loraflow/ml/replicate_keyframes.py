"""Keyframes through Replicate (``LORAFLOW_KEYFRAMES=replicate``): a GPU worker without a GPU.

A LoRA the fallback trained on Replicate lives there as a model version (its LoRA and trained
tokens baked in), so its keyframe is a prediction of that version with the clip's prompt, seed
and LoRA scale. A LoRA trained on a pod has no such version: asking for its keyframe here is an
error that names the way out (``LORAFLOW_KEYFRAMES=local`` on a GPU worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from loraflow.contracts.names import REPLICATE_HANDLE_PREFIX
from loraflow.domain.clips import AppliedLora
from loraflow.errors import ProviderError

if TYPE_CHECKING:
    from loraflow.compute.replicate import ReplicatePredictor, ReplicateTrainer

__all__ = ["ReplicateKeyframes"]


class ReplicateKeyframes:
    def __init__(
        self, predictor: ReplicatePredictor, trainer: ReplicateTrainer, *, dsn: str, timeout_s: float = 600
    ) -> None:
        self._predictor = predictor
        self._trainer = trainer
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._versions: dict[str, str] = {}  # lora id -> its Replicate version (never changes)

    def generate(self, lora: AppliedLora, lora_key: str, prompt: str, seed: int) -> bytes:
        return self._predictor.generate_image(
            self._version(lora.lora_id),
            prompt=prompt,
            seed=seed,
            lora_scale=lora.scale,
            timeout_s=self._timeout_s,
        )

    def _version(self, lora_id: str) -> str:
        if lora_id in self._versions:
            return self._versions[lora_id]
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            row = conn.execute(
                """SELECT runpod_pod_id FROM lora_training_jobs
                    WHERE lora_model_id = %s AND runpod_pod_id LIKE %s
                    ORDER BY created_at DESC LIMIT 1""",
                [lora_id, REPLICATE_HANDLE_PREFIX + "%"],
            ).fetchone()
        if row is None:
            raise ProviderError(
                f"LoRA {lora_id} was trained on a pod, so Replicate has no version of it: its keyframes "
                "need a GPU worker with LORAFLOW_KEYFRAMES=local",
                retryable=False,
            )
        training = self._trainer.get(str(row[0]).removeprefix(REPLICATE_HANDLE_PREFIX))
        version = training.output.version if training.output else None
        if not version:
            raise ProviderError(f"Replicate's training of LoRA {lora_id} names no version", retryable=False)
        self._versions[lora_id] = version
        return version
