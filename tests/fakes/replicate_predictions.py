"""The prediction side of the fake Replicate (``tests/fakes/replicate.py`` serves it): what a
prediction of an SDXL version holds, and a predictor that really generates.

One ``StableDiffusionXLPipeline`` of the tiny model, loaded on first use and guarded by a lock,
plays Replicate's machine: a prediction is ``starting`` until it holds the pipeline, then
``processing``, then ``succeeded`` (PNG images), ``failed`` (the model's exception as ``error``),
``canceled`` (by its creator, or at its ``Cancel-After`` deadline while running) or ``aborted``
(its deadline passed before it started), as
``#/components/schemas/schemas_prediction_response/properties/status`` describes them.

A trained version runs as Replicate's SDXL runs its trained versions: the training's
``lora.safetensors`` is loaded as an adapter at ``lora_scale`` (0: the base model's output), its
``embeddings.pti`` rows are put into both text encoders as ``<s0><s1>``, and the trigger word in
the prompt is replaced by those tokens (``special_params.json``), as cog-sdxl's ``predict``
does. Every state change is announced on one condition, so tests wait on it, not on sleeps.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loraflow.compute.replicate_api import PREDICTION_TERMINAL, PredictionStatus
from loraflow.ml.trained_tokens import TrainedTokens, split_tokens, use_trained_tokens
from loraflow.threads import default_threads

__all__ = ["FakePrediction", "FakePredictor", "SdxlInput", "TrainedLora"]


class SdxlInput(BaseModel):
    """The inputs of Replicate's ``stability-ai/sdxl`` that the fake understands (the model's own
    schema, its version's ``openapi_schema``, is not in the API document). Defaults are the tiny
    model's: its native size, 20 steps, guidance 1.0 (SDXL's are 1024, 50, 7.5). Unknown inputs
    are refused, so a misspelt one is an error rather than an input silently not used."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = "An astronaut riding a rainbow unicorn"
    negative_prompt: str = ""
    width: int | None = Field(default=None, ge=8)
    height: int | None = Field(default=None, ge=8)
    num_outputs: int = Field(default=1, ge=1, le=4)
    num_inference_steps: int = Field(default=20, ge=1, le=500)
    guidance_scale: float = Field(default=1.0, ge=1.0, le=50.0)
    seed: int | None = None  # None: a random seed, written to the logs
    lora_scale: float = Field(default=0.6, ge=0.0, le=1.0)
    apply_watermark: bool = True
    disable_safety_checker: bool = False


@dataclass(frozen=True)
class TrainedLora:
    """What a trained version adds to the base model: the files its training left."""

    weights: Path  # lora.safetensors
    embeddings: Path  # embeddings.pti: text_encoders_0/1, the rows of "<s0><s1>"
    token_map: dict[str, str]  # special_params.json: trigger word → "<s0><s1>"


@dataclass
class FakePrediction:
    id: str
    model: str  # "owner/name"
    version: str  # the version's id
    input: dict[str, Any]  # as the request gave it
    sdxl: SdxlInput
    lora: TrainedLora | None
    deadline: float | None = None  # from Cancel-After
    status: PredictionStatus = PredictionStatus.starting
    error: str | None = None
    logs: str = ""
    images: list[bytes] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in PREDICTION_TERMINAL


class _Stopped(Exception):
    """Raised between denoising steps when the prediction was canceled or the fake closed."""


class FakePredictor:
    def __init__(self, base_model: str) -> None:
        self.base_model = base_model
        self.items: dict[str, FakePrediction] = {}
        #: Every status change is announced here; it also guards the predictions' state.
        self.changed = threading.Condition()
        self._pipeline_lock = threading.Lock()  # one machine: one prediction at a time
        self._pipe: Any = None
        self._held = False
        self._closed = False

    # -- for the API -------------------------------------------------------------------------

    def submit(self, prediction: FakePrediction) -> None:
        with self.changed:
            self.items[prediction.id] = prediction
        threading.Thread(target=self._run, args=(prediction,), daemon=True).start()

    def state(self, prediction: FakePrediction) -> FakePrediction:
        """The prediction, with its deadline applied (as Replicate would have by now)."""
        with self.changed:
            self._expire(prediction)
        return prediction

    def cancel(self, prediction: FakePrediction) -> None:
        with self.changed:
            self._expire(prediction)
            if not prediction.terminal:
                self._end(prediction, PredictionStatus.canceled)

    # -- for tests ---------------------------------------------------------------------------

    def hold(self) -> None:
        """Predictions that start running stop before their first step, ``processing``, until
        ``release`` (or until they are canceled)."""
        with self.changed:
            self._held = True

    def release(self) -> None:
        with self.changed:
            self._held = False
            self.changed.notify_all()

    def wait_for(self, prediction_id: str, statuses: Iterable[PredictionStatus], timeout: float) -> bool:
        """Whether the prediction reached one of ``statuses`` within ``timeout`` seconds."""
        wanted = frozenset(statuses)
        with self.changed:
            prediction = self.items[prediction_id]
            return self.changed.wait_for(
                lambda: self._expire(prediction).status in wanted or self._closed, timeout
            )

    def close(self) -> None:
        with self.changed:
            self._closed = True
            self.changed.notify_all()

    # -- the machine -------------------------------------------------------------------------

    def _expire(self, prediction: FakePrediction) -> FakePrediction:
        """Past its deadline, a prediction that has not ended is canceled if it runs, aborted if
        it never started (``#/components/schemas/schemas_prediction_response/properties/status``).
        Call holding ``changed``."""
        if prediction.deadline is not None and not prediction.terminal and time.time() >= prediction.deadline:
            started = prediction.status == PredictionStatus.processing
            self._end(prediction, PredictionStatus.canceled if started else PredictionStatus.aborted)
        return prediction

    def _end(self, prediction: FakePrediction, status: PredictionStatus, error: str | None = None) -> None:
        prediction.status, prediction.error, prediction.completed_at = status, error, time.time()
        self.changed.notify_all()

    def _running(self, prediction: FakePrediction) -> bool:
        with self.changed:
            return self._expire(prediction).status == PredictionStatus.processing and not self._closed

    def _run(self, prediction: FakePrediction) -> None:
        with self._pipeline_lock:
            with self.changed:
                if self._expire(prediction).terminal or self._closed:
                    return  # canceled or aborted while it waited for the machine
                prediction.status, prediction.started_at = PredictionStatus.processing, time.time()
                self.changed.notify_all()
                while self._held and prediction.status == PredictionStatus.processing and not self._closed:
                    deadline = prediction.deadline
                    self.changed.wait(None if deadline is None else max(0.0, deadline - time.time()))
                    self._expire(prediction)
            if not self._running(prediction):
                return
            try:
                images = self._generate(prediction)
            except _Stopped:
                return
            except Exception as exc:  # the model's failure is the prediction's
                with self.changed:
                    if prediction.status == PredictionStatus.processing:
                        self._end(prediction, PredictionStatus.failed, f"{type(exc).__name__}: {exc}")
                return
            with self.changed:
                if prediction.status == PredictionStatus.processing:
                    prediction.images = images
                    self._end(prediction, PredictionStatus.succeeded)

    def _pipeline(self) -> Any:
        if self._pipe is None:
            import torch
            from diffusers import StableDiffusionXLPipeline

            torch.set_num_threads(default_threads())  # this process's share, as the worker's
            self._pipe = StableDiffusionXLPipeline.from_pretrained(self.base_model)
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe

    def _generate(self, prediction: FakePrediction) -> list[bytes]:
        import torch

        pipe = self._pipeline()
        sdxl = prediction.sdxl
        seed = sdxl.seed if sdxl.seed is not None else random.randrange(2**32)
        prediction.logs += f"Using seed: {seed}\n"
        prompt = sdxl.prompt
        size = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
        pipe.unload_lora_weights()  # the last prediction's LoRA is not this one's
        if prediction.lora is not None:
            pipe.load_lora_weights(str(prediction.lora.weights), adapter_name="trained")
            pipe.set_adapters(["trained"], adapter_weights=[sdxl.lora_scale])
            use_trained_tokens(pipe, _tokens(prediction.lora))
            for word, tokens in prediction.lora.token_map.items():
                prompt = prompt.replace(word, tokens)  # as cog-sdxl does
            prediction.logs += f"LoRA at scale {sdxl.lora_scale}; prompt: {prompt}\n"

        def stop_if_ended(_pipe: Any, _step: int, _timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if not self._running(prediction):
                raise _Stopped
            return kwargs

        try:
            images = pipe(
                prompt,
                negative_prompt=sdxl.negative_prompt or None,
                width=sdxl.width or size,
                height=sdxl.height or size,
                num_images_per_prompt=sdxl.num_outputs,
                num_inference_steps=sdxl.num_inference_steps,
                guidance_scale=sdxl.guidance_scale,
                generator=torch.Generator().manual_seed(seed),
                callback_on_step_end=stop_if_ended,
            ).images
        finally:
            pipe.unload_lora_weights()
        pngs = []
        for image in images:
            out = io.BytesIO()
            image.save(out, format="PNG")
            pngs.append(out.getvalue())
        return pngs


def _tokens(lora: TrainedLora) -> TrainedTokens:
    """The trained tokens of ``embeddings.pti`` in loraflow's terms: text_encoders_0 is CLIP
    ViT-L's (``clip_l``), text_encoders_1 OpenCLIP bigG's (``clip_g``)."""
    from safetensors.torch import load_file

    rows = load_file(str(lora.embeddings))
    (tokens,) = lora.token_map.values()
    return TrainedTokens(
        dict(lora.token_map),
        split_tokens(tokens),
        {"clip_l": rows["text_encoders_0"], "clip_g": rows["text_encoders_1"]},
    )
