"""How a LoRA's stored row reads in the API (``LoraDetail``): one home, for its page and for the
review queue."""

from __future__ import annotations

from typing import Any

import anyio

from api.schemas import (
    CheckpointScore,
    Creator,
    LoraDetail,
    RatingPublic,
    ValidationImage,
    ValidationPrompt,
    ValidationResult,
)
from loraflow.contracts.names import FINAL_CHECKPOINT
from loraflow.db.ratings import RatingSummary
from loraflow.domain.params import public_params
from loraflow.storage import Storage

__all__ = ["lora_detail"]


async def lora_detail(row: dict[str, Any], storage: Storage, *, my_rating: int | None) -> LoraDetail:
    """The row of ``lora_library`` as the API shows it; validation images get signed URLs (made
    now, off the event loop: a cloud store signs over HTTP)."""
    report = row.get("validation_report")
    validation = await anyio.to_thread.run_sync(_validation, report, storage) if report else None
    return LoraDetail.model_validate(
        {
            **_summary_fields(row),
            "training_params": public_params(row["training_params"]),
            "validation": validation,
            "my_rating": my_rating,
        }
    )


def _summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    rating = RatingSummary.of(row["rating_sum"], row["rating_count"])
    return {
        **row,
        "created_by": Creator(id=row.get("user_id"), email=row.get("created_by_email")),
        "rating": RatingPublic(mean=rating.mean, count=rating.count),
    }


def _validation(report: dict[str, Any], storage: Storage) -> ValidationResult:
    """The recorded report, with signed URLs (made now: they expire) for the images a user
    looks at: each prompt's control and the kept checkpoint's image."""
    shown = report.get("chosen") or FINAL_CHECKPOINT
    expired = bool(report.get("purged"))  # the images are gone (LORAFLOW_VALIDATION_IMAGE_DAYS)

    def image(i: dict[str, Any], *, signed: bool) -> ValidationImage:
        url = storage.url(i["image_key"]) if signed and not expired else None
        return ValidationImage(
            checkpoint=i["checkpoint"], step=i["step"], score=i["score"],
            shows_character=i["shows_character"], image_url=url,
        )  # fmt: skip

    prompts = [
        ValidationPrompt(
            index=p["index"],
            prompt=p["prompt"],
            seed=p["seed"],
            control=image(p["control"], signed=True),
            checkpoints=[image(i, signed=i["checkpoint"] == shown) for i in p["checkpoints"]],
        )
        for p in report.get("prompts", [])
    ]
    return ValidationResult(
        judge=report["judge"],
        chosen=report.get("chosen"),
        chosen_step=report.get("chosen_step"),
        checkpoints=[CheckpointScore(**c) for c in report.get("checkpoints", [])],
        prompts=prompts,
        error=report.get("error"),
    )
