"""Housekeeping activities run by Temporal Schedules (see ``loraflow.temporal.schedules``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from activities.heartbeats import heartbeating
from loraflow.contracts.maintenance import (
    PurgedValidationImages,
    PurgeValidationImagesInput,
    RefreshedTrending,
    RefreshTrendingInput,
)
from loraflow.contracts.names import validation_prefix
from loraflow.logging import get_logger
from loraflow.storage import Storage

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = get_logger(__name__)


class MaintenanceActivities:
    def __init__(self, *, pool: ConnectionPool, storage: Storage) -> None:
        self._pool = pool
        self._storage = storage

    @activity.defn(name="purge_validation_images")
    def purge_validation_images(self, request: PurgeValidationImagesInput) -> PurgedValidationImages:
        """Delete the validation images of LoRAs that finished more than ``max_age_days`` ago
        and clear their URLs (the report keeps its scores, marked ``purged``). Idempotent: a LoRA
        is done once its URLs are cleared and its report marked, and the files go first, so a
        crash in between is finished by the next run. A LoRA that failed validation has a report
        and no URLs: its images expire too."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                """SELECT id FROM lora_models
                    WHERE (validation_image_urls IS NOT NULL
                           OR (validation_report IS NOT NULL AND NOT validation_report ? 'purged'))
                      AND completed_at < now() - make_interval(days => %s)
                    ORDER BY completed_at""",
                [request.max_age_days],
            ).fetchall()
            for (lora_id,) in rows:
                activity.heartbeat(str(lora_id))
                keys = self._storage.list(validation_prefix(str(lora_id)))
                for key in keys:
                    self._storage.delete(key)
                conn.execute(
                    """UPDATE lora_models SET validation_image_urls = NULL,
                              validation_report = validation_report || '{"purged": true}'::jsonb
                        WHERE id = %s""",
                    [lora_id],
                )
                log.info("validation_images_purged", lora_id=str(lora_id), files=len(keys))
        return PurgedValidationImages(loras=len(rows))

    @activity.defn(name="refresh_trending")
    def refresh_trending(self, request: RefreshTrendingInput) -> RefreshedTrending:
        """Take uses older than 30 days off ``uses_30d`` (a use adds itself at once; sql/0012).
        One statement: a retry recounts from scratch."""
        with self._pool.connection() as conn, heartbeating("recounting"):
            row = conn.execute("SELECT lora_trending_refresh()").fetchone()
        changed = int(row[0]) if row else 0
        log.info("trending_refreshed", loras=changed)
        return RefreshedTrending(loras=changed)
