"""The validation activities: one validation prompt each, generated on the machine that trained
and judged here, against the character's references.

``validate_on_pod`` asks the pod's agent (``/generate``) for the base model's image and each
checkpoint's, same prompt and seed, on the pod's GPU, while the pod and its model are still
there; ``validate_on_replicate`` asks Replicate for predictions of the version the fallback
trained (``lora_scale`` 1) and of the base SDXL version (the control), same prompt and seed.
Either way the worker only judges (a face or image embedding, milliseconds on a CPU), screens
each image for explicit content (NudeNet on the CPU, ``loraflow.ml.screening``: the result says
so per image, and ``record_outcome`` hides a LoRA whose checkpoint images were flagged) and
keeps the images: no worker needs a GPU or a base model.

The judge is chosen per LoRA by what its references show (``loraflow.ml.judges.pick_judge``):
a face judge when they show a face, an image-embedding judge otherwise, the pixel judge only for
the tiny demo model.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import heartbeating
from activities.pods import raise_for_agent, reaching
from loraflow.compute import ComputeProvider
from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import (
    JudgedImage,
    PromptValidation,
    ValidateOnPodInput,
    ValidateOnReplicateInput,
)
from loraflow.contracts.names import CONTROL, FINAL_CHECKPOINT, validation_image_key
from loraflow.errors import ProviderError
from loraflow.logging import get_logger
from loraflow.ml.judges import EmbeddingJudge, FaceJudge, Judge, JudgeUnavailable, PixelJudge, pick_judge
from loraflow.ml.judges import shows_character as judged_to_show
from loraflow.ml.screening import ImageScreen
from loraflow.storage import Storage
from training_scripts import agent_protocol as wire

if TYPE_CHECKING:
    from PIL import Image

    from loraflow.compute.replicate import ReplicatePredictor, ReplicateTrainer

__all__ = ["Judges", "ValidationActivities"]

log = get_logger(__name__)
#: Each long poll of the agent's /generate waits this long for the images.
_GENERATE_WAIT_S = 20.0


@dataclass(frozen=True)
class Judges:
    """The judges this worker has (``pick_judge`` chooses among them per LoRA)."""

    face: FaceJudge | None = None
    embedding: EmbeddingJudge | None = None
    pixel: PixelJudge | None = None  # the tiny demo model only

    def pick(self, references: list[Image.Image]) -> Judge:
        return pick_judge(references, face=self.face, embedding=self.embedding, pixel=self.pixel)


class ValidationActivities:
    def __init__(
        self,
        *,
        storage: Storage,
        provider: ComputeProvider,
        judges: Judges,
        replicate: ReplicatePredictor | None = None,
        trainer: ReplicateTrainer | None = None,
        screen: ImageScreen | None = None,
    ) -> None:
        self._storage = storage
        self._provider = provider
        self._judges = judges
        self._screen = screen
        self._replicate = replicate
        self._trainer = trainer
        self._lock = threading.Lock()

    @activity.defn(name="validate_on_pod")
    def validate_on_pod(self, request: ValidateOnPodInput) -> PromptValidation:
        ask = wire.GenerateRequest(
            request_id=f"{request.workflow_id}-v{request.index}",
            prompt=request.prompt,
            seed=request.seed,
            checkpoints=[c.name for c in request.checkpoints],
            steps=request.steps,
        )
        with heartbeating("generating"), reaching(self._provider, request.pod) as agent:
            # Asked first, so that the prompts' requests reach the pod together (one batch) and
            # the pod generates while this worker reads the references and picks the judge.
            _submit(agent, ask)
            references = self._references(request.reference_keys)
            judge = self._pick(references)
            generation = _generate(agent, ask)
            images = {i.checkpoint: _fetch(agent, ask.request_id, i) for i in generation.generated()}
        steps = {c.name: c.step for c in request.checkpoints}
        log.info(
            "validation_generated_on_pod",
            lora_id=request.lora_id,
            workflow_id=request.workflow_id,
            index=request.index,
            images=len(images),
            seconds=generation.seconds,
        )
        return self._judge(request.lora_id, request.index, request.prompt, request.seed, judge,
                           references, images, steps)  # fmt: skip

    @activity.defn(name="validate_on_replicate")
    def validate_on_replicate(self, request: ValidateOnReplicateInput) -> PromptValidation:
        if self._replicate is None or self._trainer is None:
            raise ApplicationError("Replicate is not configured on this worker", non_retryable=True)
        references = self._references(request.reference_keys)
        judge = self._pick(references)
        training = self._trainer.get(request.training.training_id)
        version = training.output.version if training.output else None
        if not version:
            raise ApplicationError(
                f"Replicate training {request.training.training_id} names no trained version",
                non_retryable=True,
            )
        # The control is the base model itself (the trainer's SDXL version): the trained version
        # at lora_scale 0 would still put its trained tokens in for the trigger word.
        base = f"{self._trainer.version.model}:{self._trainer.version.id}"
        images = {}
        with heartbeating("generating"):
            for name, model, scale in ((CONTROL, base, 0.0), (FINAL_CHECKPOINT, version, 1.0)):
                try:
                    images[name] = self._replicate.generate_image(
                        model,
                        prompt=request.prompt,
                        seed=request.seed,
                        lora_scale=scale,
                        timeout_s=600,
                        num_inference_steps=request.steps,
                    )
                except ProviderError as exc:
                    raise ApplicationError(
                        f"Replicate could not generate the validation image: {exc}",
                        type=ErrorType.PROVIDER,
                        non_retryable=not exc.retryable,
                    ) from exc
        steps = {FINAL_CHECKPOINT: _steps_of(training.input)}
        return self._judge(request.lora_id, request.index, request.prompt, request.seed, judge,
                           references, images, steps)  # fmt: skip

    # -- shared --------------------------------------------------------------------------------

    def _references(self, keys: list[str]) -> list[Image.Image]:
        from PIL import Image

        references = []
        for key in keys:
            with Image.open(io.BytesIO(b"".join(self._storage.get(key)))) as opened:
                references.append(opened.convert("RGB"))
        return references

    def _pick(self, references: list[Image.Image]) -> Judge:
        try:
            return self._judges.pick(references)
        except JudgeUnavailable as exc:
            raise ApplicationError(str(exc), type=ErrorType.NO_JUDGE, non_retryable=True) from exc

    def _judge(
        self,
        lora_id: str,
        index: int,
        prompt: str,
        seed: int,
        judge: Judge,
        references: list[Image.Image],
        images: dict[str, bytes],
        steps: dict[str, int],
    ) -> PromptValidation:
        """Score every image against the references, screen it (``loraflow.ml.screening``) and
        keep it (a retry overwrites the same keys: validation images are evidence, not
        archival)."""
        from PIL import Image

        prepared = judge.references(references)
        judged: dict[str, JudgedImage] = {}
        control_score: float | None = None
        for name in [CONTROL, *(n for n in images if n != CONTROL)]:
            with Image.open(io.BytesIO(images[name])) as opened:
                rgb = opened.convert("RGB")
            score = prepared.score(rgb)
            score = None if score is None else round(score, 5)
            screening = None if self._screen is None else self._screen.screen(rgb)
            if screening is not None and screening.flagged:
                log.warning(
                    "validation_image_flagged", lora_id=lora_id, index=index, checkpoint=name,
                    findings=screening.describe(),
                )  # fmt: skip
            if name == CONTROL:
                control_score = score
            key = validation_image_key(lora_id, index, name)
            self._storage.delete(key)
            self._storage.put(key, [images[name]])
            judged[name] = JudgedImage(
                checkpoint=name,
                step=steps.get(name, 0),
                image_key=key,
                image_url=self._storage.url(key),
                score=score,
                shows_character=name != CONTROL and judged_to_show(judge, score, control_score),
                screening=screening,
            )
        return PromptValidation(
            index=index,
            prompt=prompt,
            seed=seed,
            judge=judge.name,
            control=judged.pop(CONTROL),
            checkpoints=sorted(judged.values(), key=lambda i: i.step),
        )


def _submit(agent: httpx.Client, ask: wire.GenerateRequest) -> None:
    raise_for_agent(agent.post(wire.GENERATE_PATH, json=dataclasses.asdict(ask)))


def _generate(agent: httpx.Client, ask: wire.GenerateRequest) -> wire.Generation:
    """Ask until the images are there: the same request again joins the same work."""
    while True:
        r = agent.post(
            wire.GENERATE_PATH,
            params={"wait_s": _GENERATE_WAIT_S},
            json=dataclasses.asdict(ask),
            timeout=_GENERATE_WAIT_S + 30,
        )
        raise_for_agent(r)
        generation = wire.generation_from_json(r.json())
        state = wire.GenerationState(generation.state)
        if state == wire.GenerationState.FAILED:
            raise ApplicationError(f"the pod could not generate the validation images: {generation.error}")
        if state == wire.GenerationState.SUCCEEDED:
            return generation


def _fetch(agent: httpx.Client, request_id: str, image: wire.GeneratedImage) -> bytes:
    import hashlib

    r = agent.get(wire.generated_path(request_id, image.file))
    raise_for_agent(r)
    if hashlib.sha256(r.content).hexdigest() != image.sha256:
        raise ApplicationError(f"validation image {image.file} arrived corrupted; retrying")
    return r.content


def _steps_of(training_input: Any) -> int:
    steps = (training_input or {}).get("max_train_steps")
    return int(steps) if isinstance(steps, int | float) else 0
