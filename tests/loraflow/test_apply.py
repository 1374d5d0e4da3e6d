"""Which way a clip is generated: reference images, the LoRA directly, or an SDXL keyframe."""

from __future__ import annotations

import pytest

from loraflow.domain.clips import (
    NOTICE_HIDDEN,
    NOTICE_MISSING,
    NOTICE_TRAINING,
    VIDEO_MODELS,
    ClipRequest,
    decide,
    with_trigger,
)
from loraflow.errors import UnknownVideoModel

READY = {"training_status": "completed", "storage_path": "lora-models/x/y.safetensors", "base_model": "sdxl"}


def _request(model: str, lora_id: str | None = "lora-1") -> ClipRequest:
    return ClipRequest("job", "clip", "a prompt", "http://refs/0.png", model, lora_id)


@pytest.mark.parametrize(
    ("lora_id", "row", "expected"),
    [
        (None, None, ("reference_images", None)),
        ("l", None, ("reference_images", NOTICE_MISSING)),
        ("l", {"training_status": "pending"}, ("reference_images", NOTICE_TRAINING)),
        ("l", {"training_status": "validating"}, ("reference_images", NOTICE_TRAINING)),
    ],
)
def test_no_ready_lora_means_reference_images(
    lora_id: str | None, row: dict | None, expected: tuple[str, str | None]
) -> None:
    assert decide(_request("hotshot-xl", lora_id), row) == expected


def test_a_hidden_lora_falls_back_to_the_reference_images() -> None:
    """Reported and hidden pending review: a job that already uses it is told, and the clip
    goes ahead on the reference image."""
    assert decide(_request("hotshot-xl"), {**READY, "hidden_at": "2026-11-26T00:00:00Z"}) == (
        "reference_images",
        NOTICE_HIDDEN,
    )


def test_a_failed_lora_says_why() -> None:
    mode, notice = decide(_request("hotshot-xl"), {"training_status": "failed", "error_message": "cancelled"})
    assert mode == "reference_images" and notice and "cancelled" in notice


@pytest.mark.parametrize("model", sorted(VIDEO_MODELS))
def test_direct_only_where_the_family_matches(model: str) -> None:
    mode, _ = decide(_request(model), READY)
    assert mode == ("direct" if "sdxl" in VIDEO_MODELS[model].lora_families else "preprocess")


def test_sdxl_loras_are_never_sent_to_wan_or_hunyuan() -> None:
    for model in ("wan-2.1-i2v", "wan-2.2-i2v", "hunyuan-video-i2v"):
        assert decide(_request(model), READY)[0] == "preprocess"


def test_unknown_video_model_is_a_clear_error() -> None:
    with pytest.raises(UnknownVideoModel, match="unknown video model 'sora'; known: "):
        decide(_request("sora"), READY)


def test_trigger_word_is_added_once() -> None:
    assert with_trigger("a walk", "ohwx") == "ohwx character, a walk"
    assert with_trigger("ohwx character, a walk", "ohwx") == "ohwx character, a walk"
    assert with_trigger("a walk", None) == "a walk"
