"""Which checkpoint to keep: the validation's verdict over every checkpoint of a LoRA.

Pure (no I/O): the training workflow calls it on the activities' results. A checkpoint passes
when every validation prompt produced its image and at least ``needed`` of them show the
character (the judge's per-image verdict: like the references by its floor, and more like them
than the base model's image for the same prompt and seed by its margin). Of those that pass the
one with the highest likeness (the mean of its images' scores) is kept; a tie goes to the later
checkpoint, the one that trained longer on the same evidence.
"""

from __future__ import annotations

from loraflow.contracts.lora_training import (
    CheckpointInfo,
    CheckpointVerdict,
    PromptValidation,
    ValidationReport,
)

__all__ = ["choose_checkpoint"]


def choose_checkpoint(
    checkpoints: list[CheckpointInfo], prompts: list[PromptValidation], *, asked: int, needed: int
) -> ValidationReport:
    """The report over ``checkpoints`` from the ``prompts`` that were validated (``asked`` were
    asked for: a prompt that failed to generate counts against every checkpoint)."""
    verdicts = []
    for checkpoint in checkpoints:
        images = [i for p in prompts for i in p.checkpoints if i.checkpoint == checkpoint.name]
        scores = [i.score for i in images if i.score is not None]
        shown = sum(i.shows_character for i in images)
        verdicts.append(
            CheckpointVerdict(
                name=checkpoint.name,
                step=checkpoint.step,
                likeness=round(sum(scores) / len(scores), 5) if scores else None,
                shown=shown,
                passed=len(images) == asked and shown >= needed,
            )
        )
    passing = [v for v in verdicts if v.passed]
    best = max(
        passing, key=lambda v: (v.likeness if v.likeness is not None else float("-inf"), v.step), default=None
    )
    judges = sorted({p.judge for p in prompts})
    return ValidationReport(
        judge="/".join(judges) or "none",
        checkpoints=verdicts,
        prompts=sorted(prompts, key=lambda p: p.index),
        chosen=best.name if best else None,
        chosen_step=best.step if best else None,
    )
