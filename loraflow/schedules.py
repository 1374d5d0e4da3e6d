"""The Temporal Schedules loraflow keeps: created (or brought up to date) by every worker at
start, so a fresh cluster gets them without a separate deploy step. Visible in the Web UI under
Schedules."""

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

from loraflow.logging import get_logger
from loraflow.settings import Settings

log = get_logger(__name__)

PURGE_VALIDATION_IMAGES = "loraflow-purge-validation-images"
SWEEP_ORPHAN_PODS = "loraflow-sweep-orphan-pods"


def sweep_pods_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "SweepOrphanPodsWorkflow",
            settings.max_training_s,
            id=SWEEP_ORPHAN_PODS,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=10))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def purge_validation_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "PurgeValidationImagesWorkflow",
            settings.validation_image_days,
            id=PURGE_VALIDATION_IMAGES,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Create each schedule, or update it to this version's definition."""
    wanted = {
        PURGE_VALIDATION_IMAGES: purge_validation_schedule(settings),
        SWEEP_ORPHAN_PODS: sweep_pods_schedule(settings),
    }
    for schedule_id, schedule in wanted.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            log.info("schedule_created", schedule_id=schedule_id)
        except ScheduleAlreadyRunningError:

            def _replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(_replace)
