"""Replicate: the fallback when RunPod has no GPU. Replicate trains through its trainings API
(no pod, no agent): create a training of an SDXL trainer version with a destination model, poll
it, download ``output.weights``, and cancel it on cleanup.

Create is made idempotent here, because Replicate's client retries GETs but never POSTs (a POST
repeated after a lost response would start and bill a second training): before each attempt
the recent trainings are searched for one with our ``input_images`` URL, which is unique to the
LoRA's dataset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import replicate
from replicate.exceptions import ReplicateError

from loraflow.compute.base import ProviderError
from loraflow.logging import get_logger

log = get_logger(__name__)
TERMINAL = ("succeeded", "failed", "canceled")


@dataclass
class ReplicateConfig:
    api_token: str
    destination: str  # "owner/model": where Replicate pushes the trained version
    trainer_version: str = (
        "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    )
    base_url: str | None = None
    price_per_hour: float = 3.51  # an L40S on Replicate, USD
    max_attempts: int = 5
    timeout_s: float = 30.0


@dataclass
class ReplicateTraining:
    id: str
    status: str
    weights_url: str | None
    error: str | None
    logs: str


def training_input(images_url: str, params: dict[str, Any]) -> dict[str, Any]:
    """loraflow's training parameters in the SDXL trainer's terms."""
    trigger = str(params.get("trigger_word", "ohwx"))
    return {
        "input_images": images_url,
        "token_string": trigger,
        "caption_prefix": f"a photo of {trigger} character, ",
        "max_train_steps": int(params.get("steps", 1000)),
        "lora_rank": int(params.get("rank", 16)),
        "lora_lr": float(params.get("learning_rate", 1e-4)),
        "resolution": int(params.get("resolution", 1024)),
        "seed": int(params.get("seed", 42)),
        "is_lora": True,
        "use_face_detection_instead": False,
    }


class ReplicateTrainer:
    name = "replicate"

    def __init__(self, config: ReplicateConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._cfg = config
        self._sleep = sleep
        self._client = replicate.Client(
            api_token=config.api_token, base_url=config.base_url, timeout=httpx.Timeout(config.timeout_s)
        )

    @property
    def price_per_hour(self) -> float:
        return self._cfg.price_per_hour

    def start(self, images_url: str, params: dict[str, Any]) -> str:
        delay = 1.0
        for attempt in range(1, self._cfg.max_attempts + 1):
            found = self._find(images_url)
            if found:
                return found
            try:
                training = self._client.trainings.create(
                    version=self._cfg.trainer_version,
                    input=training_input(images_url, params),
                    destination=self._cfg.destination,
                )
                log.info("replicate_training_created", training_id=training.id)
                return training.id
            except httpx.TransportError as exc:
                log.warning("replicate_create_lost", error=str(exc), attempt=attempt)
            except ReplicateError as exc:
                if exc.status is not None and exc.status != 429 and exc.status < 500:
                    raise ProviderError(
                        f"Replicate refused the training: {exc.detail or exc}", retryable=False
                    ) from exc
                log.warning("replicate_create_retry", status=exc.status, attempt=attempt)
            self._sleep(delay)
            delay = min(delay * 2, 30)
        found = self._find(images_url)
        if found:
            return found
        raise ProviderError("Replicate did not accept the training")

    def get(self, training_id: str) -> ReplicateTraining:
        t = self._client.trainings.get(training_id)
        output = t.output if isinstance(t.output, dict) else {}
        return ReplicateTraining(t.id, t.status, output.get("weights"), t.error, t.logs or "")

    def cancel(self, training_id: str) -> ReplicateTraining:
        current = self.get(training_id)
        if current.status not in TERMINAL:
            self._client.trainings.cancel(training_id)
            current = self.get(training_id)
        return current

    def list_active(self) -> list[ReplicateTraining]:
        """Trainings into our destination that have not ended (for the orphan sweeper)."""
        page = self._client.trainings.list()
        return [
            ReplicateTraining(t.id, t.status, None, t.error, "")
            for t in page.results
            if t.destination == self._cfg.destination and t.status not in TERMINAL
        ]

    def _find(self, images_url: str) -> str | None:
        page = self._client.trainings.list()
        for t in page.results:
            if (t.input or {}).get("input_images") == images_url and t.status not in ("failed", "canceled"):
                return t.id
        return None
