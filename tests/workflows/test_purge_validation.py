"""Validation images expire: the daily schedule's workflow deletes those of LoRAs finished more
than LORAFLOW_VALIDATION_IMAGE_DAYS ago, and keeps the rest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from loraflow.contracts.maintenance import PurgeValidationImagesInput
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from loraflow.temporal.schedules import (
    PURGE_VALIDATION_IMAGES,
    REFRESH_TRENDING,
    SWEEP_ORPHAN_PODS,
    ensure_schedules,
)
from tests.helpers.loras import new_lora


async def _finished_with_images(
    pool: AsyncConnectionPool, pg_dsn: str, storage: LocalStorage, days_ago: int
) -> tuple[str, list[str]]:
    _, lora_id = await new_lora(pool)
    keys = [f"lora-validation/{lora_id}/{i}.png" for i in range(3)]
    for key in keys:
        storage.put(key, [key.encode()])
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(
            """UPDATE lora_models SET training_status = 'failed', error_message = 'validation failed',
                      validation_image_urls = %s,
                      completed_at = now() - make_interval(days => %s) WHERE id = %s""",
            [[storage.url(k) for k in keys], days_ago, lora_id],
        )
    return lora_id, keys


async def test_old_validation_images_are_deleted_and_recent_ones_kept(
    worker: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, pg_dsn: str
) -> None:
    storage = LocalStorage(Path(worker.data_dir) / "storage")
    old_id, old_keys = await _finished_with_images(pool, pg_dsn, storage, days_ago=31)
    new_id, new_keys = await _finished_with_images(pool, pg_dsn, storage, days_ago=29)

    purged = await temporal_env.client.execute_workflow(
        "PurgeValidationImagesWorkflow",
        PurgeValidationImagesInput(max_age_days=30),
        id=f"purge-test-{old_id}",
        task_queue=worker.task_queue,
        result_type=int,
    )
    assert purged >= 1
    assert storage.list(f"lora-validation/{old_id}/") == []
    assert storage.list(f"lora-validation/{new_id}/") == sorted(new_keys)
    with psycopg.connect(pg_dsn) as conn:
        urls = dict(
            conn.execute(
                "SELECT id::text, validation_image_urls FROM lora_models WHERE id = ANY(%s::uuid[])",
                [[old_id, new_id]],
            ).fetchall()
        )
    assert urls[old_id] is None and len(urls[new_id]) == 3
    assert all(not Path(storage.root / k).exists() for k in old_keys)


async def test_a_lora_that_failed_validation_on_its_machine_loses_its_images_too(
    worker: Settings, temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, pg_dsn: str
) -> None:
    """Validated on the machine and failed: a report, no URLs. Its images expire all the same, and
    the report keeps its scores, marked purged (the API then signs no URL for them)."""
    storage = LocalStorage(Path(worker.data_dir) / "storage")
    _, lora_id = await new_lora(pool)
    key = f"lora-validation/{lora_id}/0-final.png"
    storage.put(key, [b"png"])
    report = {"judge": "pixel", "checkpoints": [], "prompts": [], "chosen": None}
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(
            """UPDATE lora_models SET training_status = 'failed', error_message = 'validation failed',
                      validation_report = %s, completed_at = now() - interval '40 days' WHERE id = %s""",
            [Jsonb(report), lora_id],
        )
    await temporal_env.client.execute_workflow(
        "PurgeValidationImagesWorkflow",
        PurgeValidationImagesInput(max_age_days=30),
        id=f"purge-test-{lora_id}",
        task_queue=worker.task_queue,
        result_type=int,
    )
    assert storage.list(f"lora-validation/{lora_id}/") == []
    with psycopg.connect(pg_dsn) as conn:
        (kept,) = conn.execute(
            "SELECT validation_report FROM lora_models WHERE id = %s", [lora_id]
        ).fetchone()
    assert kept == {**report, "purged": True}


async def test_the_worker_keeps_a_daily_schedule_for_it(
    worker: Settings, temporal_env: WorkflowEnvironment
) -> None:
    await ensure_schedules(temporal_env.client, worker)  # a second worker start: no error
    description = await temporal_env.client.get_schedule_handle(PURGE_VALIDATION_IMAGES).describe()
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "PurgeValidationImagesWorkflow"
    assert [p.data for p in action.args] == [b'{"max_age_days":30}']  # described args stay encoded
    assert action.task_queue == worker.task_queue
    assert [i.every for i in description.schedule.spec.intervals] == [timedelta(days=1)]

    sweeper = await temporal_env.client.get_schedule_handle(SWEEP_ORPHAN_PODS).describe()
    assert isinstance(sweeper.schedule.action, ScheduleActionStartWorkflow)
    assert sweeper.schedule.action.workflow == "SweepOrphanPodsWorkflow"
    assert [i.every for i in sweeper.schedule.spec.intervals] == [timedelta(minutes=10)]

    trending = await temporal_env.client.get_schedule_handle(REFRESH_TRENDING).describe()
    assert isinstance(trending.schedule.action, ScheduleActionStartWorkflow)
    assert trending.schedule.action.workflow == "RefreshTrendingWorkflow"
    assert [i.every for i in trending.schedule.spec.intervals] == [timedelta(hours=1)]
