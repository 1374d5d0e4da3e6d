"""The Temporal Schedules loraflow keeps: created (or brought up to date) by every worker at
start, so a fresh cluster gets them without a separate deploy step. Visible in the Web UI under
Schedules.

A schedule stores its workflow's input: each is a dataclass (``loraflow.contracts.maintenance``),
so a field added later (with a default) still decodes what an older worker stored. The workflow
types are named by string: the core never imports ``workflows/``."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from loraflow.contracts.maintenance import (
    PurgeValidationImagesInput,
    RefreshTrendingInput,
    SweepOrphanPodsInput,
)
from loraflow.logging import get_logger
from loraflow.settings import Settings

log = get_logger(__name__)

PURGE_VALIDATION_IMAGES = "loraflow-purge-validation-images"
SWEEP_ORPHAN_PODS = "loraflow-sweep-orphan-pods"
REFRESH_TRENDING = "loraflow-refresh-trending"


def _every(
    interval: timedelta, workflow_type: str, arg: object, schedule_id: str, settings: Settings
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow_type, arg, id=schedule_id, task_queue=settings.task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),  # a slow run is never doubled
    )


def purge_validation_schedule(settings: Settings) -> Schedule:
    return _every(
        timedelta(days=1),
        "PurgeValidationImagesWorkflow",
        PurgeValidationImagesInput(max_age_days=settings.validation_image_days),
        schedule_id(PURGE_VALIDATION_IMAGES, settings),
        settings,
    )


def sweep_pods_schedule(settings: Settings) -> Schedule:
    return _every(
        timedelta(minutes=10),
        "SweepOrphanPodsWorkflow",
        SweepOrphanPodsInput(max_training_s=settings.max_training_s),
        schedule_id(SWEEP_ORPHAN_PODS, settings),
        settings,
    )


def refresh_trending_schedule(settings: Settings) -> Schedule:
    return _every(
        timedelta(hours=1),
        "RefreshTrendingWorkflow",
        RefreshTrendingInput(),
        schedule_id(REFRESH_TRENDING, settings),
        settings,
    )


def schedule_id(base: str, settings: Settings) -> str:
    """One schedule per task queue: worker pools on other queues (another provider, a test)
    keep their own instead of repointing the main one at themselves."""
    default = Settings.model_fields["task_queue"].default
    return base if settings.task_queue == default else f"{base}-{settings.task_queue}"


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Create each schedule, or update it to this version's definition."""
    wanted = {
        schedule_id(PURGE_VALIDATION_IMAGES, settings): purge_validation_schedule(settings),
        schedule_id(SWEEP_ORPHAN_PODS, settings): sweep_pods_schedule(settings),
        schedule_id(REFRESH_TRENDING, settings): refresh_trending_schedule(settings),
    }
    for name, schedule in wanted.items():
        try:
            await client.create_schedule(name, schedule)
            log.info("schedule_created", schedule_id=name)
        except ScheduleAlreadyRunningError:

            def _replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(name).update(_replace)
