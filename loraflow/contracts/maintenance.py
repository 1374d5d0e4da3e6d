"""Inputs and results of the scheduled housekeeping workflows and their activities (the orphan
sweeper, the validation-image purge, the trending recount). A Temporal Schedule stores its
workflow's input: a field added later must have a default, so that schedules created by an older
worker still decode.
Standard library only: the workflow sandbox imports this module."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SweepOrphanPodsInput:
    """SweepOrphanPodsWorkflow's and sweep_orphan_pods' input."""

    max_training_s: float  # a pod older than this is terminated, watched or not


@dataclass
class SweptOrphans:
    terminated: list[str] = field(default_factory=list)  # pod ids, and ``replicate:{id}`` trainings


@dataclass
class PurgeValidationImagesInput:
    """PurgeValidationImagesWorkflow's and purge_validation_images' input."""

    max_age_days: int  # validation images of LoRAs finished longer ago than this are deleted


@dataclass
class PurgedValidationImages:
    loras: int  # LoRAs whose validation images were deleted


@dataclass
class RefreshTrendingInput:
    """RefreshTrendingWorkflow's and refresh_trending's input (nothing to choose yet)."""


@dataclass
class RefreshedTrending:
    loras: int  # LoRAs whose uses in the last 30 days changed
