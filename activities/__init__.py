"""Temporal activities: the I/O of a training. Each is idempotent and safe to retry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from activities.maintenance import MaintenanceActivities
from activities.records import RecordActivities
from activities.training import TrainingActivities
from loraflow.settings import Settings


def resolve_base_model(settings: Settings) -> str:
    """The pipeline folder to train on: the configured one, or the tiny test model (built once)."""
    if settings.base_model != "tiny":
        return settings.base_model
    from training_scripts.tiny_model import ensure_tiny_sdxl

    return str(ensure_tiny_sdxl(Path(settings.data_dir) / "models"))


def build_activities(settings: Settings, pool: AsyncConnectionPool) -> list[Callable[..., Any]]:
    from loraflow import validation
    from loraflow.compute.local import LocalProvider
    from loraflow.storage.local import LocalStorage

    if settings.compute_provider != "local":
        raise ValueError(f"unknown compute provider {settings.compute_provider!r} (local)")
    base_model = resolve_base_model(settings)
    storage = LocalStorage(Path(settings.data_dir) / "storage")
    validation.configure(base_model)
    training = TrainingActivities(
        dsn=settings.database_url or "",
        storage=storage,
        provider=LocalProvider(
            Path(settings.data_dir), base_model=base_model, price_per_hour=settings.local_price_per_hour
        ),
        min_image_side=settings.min_image_side,
    )
    maintenance = MaintenanceActivities(dsn=settings.database_url or "", storage=storage)
    records = RecordActivities(pool)
    return [
        records.record_status,
        training.prepare_dataset,
        training.create_pod,
        training.wait_pod_ready,
        training.upload_images,
        training.run_training,
        training.poll_training,
        training.download_artifact,
        training.cleanup_pod,
        training.store_lora,
        training.validate_image,
        training.record_outcome,
        maintenance.purge_validation_images,
    ]
