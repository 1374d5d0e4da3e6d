"""Temporal activities: the I/O of a training. Each is idempotent and safe to retry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from activities.maintenance import MaintenanceActivities
from activities.records import RecordActivities
from activities.training import TrainingActivities
from loraflow.compute import ComputeProvider
from loraflow.settings import Settings


def resolve_base_model(settings: Settings) -> str:
    """The pipeline folder to train on: the configured one, or the tiny test model (built once)."""
    if settings.base_model != "tiny":
        return settings.base_model
    from training_scripts.tiny_model import ensure_tiny_sdxl

    return str(ensure_tiny_sdxl(Path(settings.data_dir) / "models"))


def build_provider(settings: Settings, base_model: str) -> ComputeProvider:
    """The configured compute provider."""
    if settings.compute_provider == "local":
        from loraflow.compute.local import LocalProvider

        return LocalProvider(
            Path(settings.data_dir),
            base_model=base_model,
            price_per_hour=settings.local_price_per_hour,
            agent_idle_s=settings.agent_idle_s,
            max_pod_s=settings.max_training_s,
        )
    if settings.compute_provider == "runpod":
        from loraflow.compute.runpod import RunPodConfig, RunPodProvider
        from loraflow.compute.runpod_api import Cloud

        if not settings.runpod_api_key or not settings.pod_token_secret:
            raise ValueError("LORAFLOW_RUNPOD_API_KEY and LORAFLOW_POD_TOKEN_SECRET must be set for RunPod")
        return RunPodProvider(
            RunPodConfig(
                api_key=settings.runpod_api_key.get_secret_value(),
                image=settings.runpod_image,
                token_secret=settings.pod_token_secret.get_secret_value(),
                base_url=settings.runpod_base_url,
                gpu_types=[g.strip() for g in settings.runpod_gpu_types.split(",") if g.strip()],
                cloud=Cloud(settings.runpod_cloud_type),
                min_cuda_version=settings.runpod_min_cuda_version,
                proxy_url=settings.runpod_proxy_url,
                base_model=settings.runpod_base_model,
                agent_idle_s=settings.agent_idle_s,
                max_pod_s=settings.max_training_s,
                timeout_s=settings.runpod_timeout_s,
            )
        )
    raise ValueError(f"unknown compute provider {settings.compute_provider!r} (local, runpod)")


def build_activities(
    settings: Settings, pool: AsyncConnectionPool, client: Client
) -> list[Callable[..., Any]]:
    from activities.apply import ApplyActivities
    from activities.jobs import JobActivities
    from activities.notify import NotifyActivities
    from activities.sweeper import SweeperActivities
    from loraflow.domain.clips import ClipPlanner
    from loraflow.ml import validation
    from loraflow.ml.keyframes import LocalKeyframes, LoraFileCache
    from loraflow.storage import build_storage

    base_model = resolve_base_model(settings)
    storage = build_storage(settings)
    provider = build_provider(settings, base_model)
    replicate = _replicate_trainer(settings)
    sweeper = SweeperActivities(
        providers=[provider], client=client, replicate=replicate, dsn=settings.database_url
    )
    validation.configure(base_model)
    training = TrainingActivities(
        dsn=settings.database_url or "",
        storage=storage,
        provider=provider,
        min_image_side=settings.min_image_side,
        settings=settings,
    )
    maintenance = MaintenanceActivities(dsn=settings.database_url or "", storage=storage)
    jobs = JobActivities(pool=pool, storage=storage, settings=settings)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    notify = NotifyActivities(url=settings.webhook_url, secret=secret)
    cache = LoraFileCache(
        Path(settings.data_dir) / "lora-cache", storage, max_files=settings.lora_cache_files
    )
    apply = ApplyActivities(
        ClipPlanner(
            dsn=settings.database_url or "", storage=storage, keyframes=LocalKeyframes(base_model, cache)
        )
    )
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
        jobs.create_job_lora,
        jobs.fetch_references,
        jobs.job_lora_status,
        notify.send_webhook,
        apply.plan_clip,
        sweeper.sweep_orphan_pods,
        *_replicate_activities(settings, storage, replicate),
    ]


def _replicate_trainer(settings: Settings) -> Any:
    if settings.replicate_api_token is None:
        return None
    from loraflow.compute.replicate import ReplicateConfig, ReplicateTrainer

    return ReplicateTrainer(
        ReplicateConfig(
            api_token=settings.replicate_api_token.get_secret_value(),
            destination=settings.replicate_destination,
            trainer_version=settings.replicate_trainer_version,
            base_url=settings.replicate_base_url,
            price_per_hour=settings.replicate_price_per_hour,
        )
    )


def _replicate_activities(settings: Settings, storage: Any, trainer: Any) -> list[Callable[..., Any]]:
    if trainer is None:
        return []
    from activities.replicate import ReplicateActivities

    replicate = ReplicateActivities(dsn=settings.database_url or "", storage=storage, trainer=trainer)
    return [
        replicate.replicate_start,
        replicate.replicate_poll,
        replicate.replicate_download,
        replicate.replicate_cancel,
    ]
