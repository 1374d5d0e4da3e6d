"""Applying a LoRA to a clip: the video generator asks, per clip, how to generate it.

- no LoRA, or one not ready, or one that failed: **reference images** (with the spec's notice);
- a ready LoRA and a video model that accepts LoRAs of its base-model family: **direct**
  (the weights URL and scale go to the video model);
- otherwise: **pre-process** — a keyframe generated with SDXL + the LoRA, handed to the video
  model as its image.

Plain Python (``ClipPlanner.plan``) and a Temporal activity (``activities.apply.plan_clip``)
that the video generator's worker can register, or run on loraflow's task queue by name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from loraflow.errors import UnknownVideoModel
from loraflow.storage import Storage

Mode = Literal["reference_images", "direct", "preprocess"]

NOTICE_TRAINING = (
    "LoRA training in progress. Video will use reference images. "
    "You can regenerate with LoRA once training completes."
)
NOTICE_FAILED = "The LoRA could not be trained ({reason}). Video will use reference images."
NOTICE_MISSING = "The selected LoRA does not exist. Video will use reference images."
NOTICE_HIDDEN = "This LoRA is hidden pending a moderation review. Video will use reference images."


@dataclass(frozen=True)
class VideoModel:
    name: str
    lora_families: frozenset[str]  # base-model families whose LoRAs it can load
    takes_image: bool  # image-to-video: a keyframe can condition it


#: Which video models accept which LoRA families. loraflow trains SDXL LoRAs: only SDXL-based
#: video models (Hotshot-XL, AnimateDiff-SDXL) can load them. Wan, Hunyuan, LTX and the
#: hosted image-to-video models have their own architectures (an SDXL LoRA's keys match none
#: of their layers), so for them the LoRA is applied through an SDXL keyframe instead.
VIDEO_MODELS: dict[str, VideoModel] = {
    m.name: m
    for m in (
        VideoModel("hotshot-xl", frozenset({"sdxl"}), takes_image=False),
        VideoModel("animatediff-sdxl", frozenset({"sdxl"}), takes_image=False),
        VideoModel("animatediff", frozenset({"sd15"}), takes_image=False),
        VideoModel("wan-2.1-i2v", frozenset({"wan2.1"}), takes_image=True),
        VideoModel("wan-2.2-i2v", frozenset({"wan2.2"}), takes_image=True),
        VideoModel("hunyuan-video-i2v", frozenset({"hunyuan-video"}), takes_image=True),
        VideoModel("ltx-video", frozenset({"ltx-video"}), takes_image=True),
        VideoModel("stable-video-diffusion", frozenset(), takes_image=True),
        VideoModel("kling-v2.1", frozenset(), takes_image=True),
        VideoModel("minimax-video-01", frozenset(), takes_image=True),
    )
}


@dataclass
class ClipRequest:
    job_id: str | None
    clip_id: str  # unique per clip: usage is counted once per (LoRA, clip)
    prompt: str
    reference_image_url: str
    video_model: str
    lora_id: str | None = None  # the job's LoRA selection (None: "No LoRA")
    lora_scale: float = 0.8
    seed: int = 0


@dataclass
class AppliedLora:
    lora_id: str
    weights_url: str
    sha256: str
    scale: float
    trigger_word: str | None
    base_model: str


@dataclass
class ClipPlan:
    mode: str  # Mode
    image_url: str  # the image to condition the clip on: the reference image or the keyframe
    prompt: str
    lora: AppliedLora | None = None
    notice: str | None = None


class KeyframeGenerator(Protocol):
    def generate(self, lora: AppliedLora, lora_key: str, prompt: str, seed: int) -> bytes:
        """A PNG generated with the base model plus the LoRA."""
        ...


def video_model(name: str) -> VideoModel:
    try:
        return VIDEO_MODELS[name]
    except KeyError:
        raise UnknownVideoModel(
            f"unknown video model {name!r}; known: {', '.join(sorted(VIDEO_MODELS))}"
        ) from None


def with_trigger(prompt: str, trigger_word: str | None) -> str:
    if not trigger_word or trigger_word in prompt.split():
        return prompt
    return f"{trigger_word} character, {prompt}"


def decide(request: ClipRequest, lora: dict[str, Any] | None) -> tuple[Mode, str | None]:
    """The mode and the notice, from the LoRA row (None: no selection or no such LoRA)."""
    model = video_model(request.video_model)
    if request.lora_id is None:
        return "reference_images", None
    if lora is None:
        return "reference_images", NOTICE_MISSING
    if lora.get("hidden_at") is not None:
        return "reference_images", NOTICE_HIDDEN
    if lora["training_status"] == "failed":
        return "reference_images", NOTICE_FAILED.format(reason=lora.get("error_message") or "unknown")
    if lora["training_status"] != "completed" or not lora.get("storage_path"):
        return "reference_images", NOTICE_TRAINING
    if (lora.get("base_model") or "sdxl") in model.lora_families:
        return "direct", None
    return "preprocess", None


_USAGE_NAMESPACE = uuid.UUID("6c6f7261-666c-6f77-0000-000000000002")


class ClipPlanner:
    """Answers ``plan(request)``; counts each (LoRA, clip) once in ``usage_count``."""

    def __init__(self, *, dsn: str, storage: Storage, keyframes: KeyframeGenerator,
                 keyframe_cost_usd: float = 0.005) -> None:  # fmt: skip
        self._dsn = dsn
        self._storage = storage
        self._keyframes = keyframes
        self._keyframe_cost = keyframe_cost_usd

    def plan(self, request: ClipRequest) -> ClipPlan:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self._dsn, autocommit=True, row_factory=dict_row) as conn:
            lora = None
            if request.lora_id is not None:
                lora = conn.execute(
                    """SELECT id, training_status, error_message, storage_path, storage_url, sha256,
                              trigger_word, base_model, hidden_at FROM lora_models WHERE id = %s""",
                    [request.lora_id],
                ).fetchone()
            mode, notice = decide(request, lora)
            if mode == "reference_images" or lora is None:
                return ClipPlan(mode, request.reference_image_url, request.prompt, notice=notice)

            applied = AppliedLora(
                lora_id=str(lora["id"]),
                weights_url=lora["storage_url"],
                sha256=lora["sha256"],
                scale=request.lora_scale,
                trigger_word=lora["trigger_word"],
                base_model=lora["base_model"] or "sdxl",
            )
            prompt = with_trigger(request.prompt, applied.trigger_word)
            image_url = request.reference_image_url
            if mode == "preprocess":
                png = self._keyframes.generate(applied, lora["storage_path"], prompt, request.seed)
                key = f"lora-keyframes/{applied.lora_id}/{_safe(request.clip_id)}.png"
                self._storage.delete(key)  # a retry regenerates the same keyframe
                self._storage.put(key, [png])
                image_url = self._storage.url(key)
            self._count_usage(conn, request, applied, mode)
        return ClipPlan(mode, image_url, prompt, lora=applied)

    def _count_usage(self, conn: Any, request: ClipRequest, lora: AppliedLora, mode: Mode) -> None:
        with conn.transaction():
            took = conn.execute(
                """INSERT INTO lora_usages (lora_model_id, clip_id, job_id, mode) VALUES (%s, %s, %s, %s)
                   ON CONFLICT DO NOTHING""",
                [lora.lora_id, request.clip_id, request.job_id, mode],
            ).rowcount
            if took:
                conn.execute(
                    "UPDATE lora_models SET usage_count = usage_count + 1, uses_30d = uses_30d + 1"
                    " WHERE id = %s",
                    [lora.lora_id],
                )
                if mode == "preprocess":
                    conn.execute(
                        """INSERT INTO job_costs (id, job_id, lora_model_id, service, cost)
                           VALUES (%s, %s, %s, 'lora_preprocess', %s) ON CONFLICT (id) DO NOTHING""",
                        [uuid.uuid5(_USAGE_NAMESPACE, f"{lora.lora_id}/{request.clip_id}"),
                         request.job_id, lora.lora_id, self._keyframe_cost],
                    )  # fmt: skip


def _safe(clip_id: str) -> str:
    """A key segment for any clip id: readable where it can be, distinct always."""
    import hashlib

    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in clip_id)[:64]
    return f"{readable}-{hashlib.sha256(clip_id.encode()).hexdigest()[:12]}"
