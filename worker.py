"""The Temporal worker: runs loraflow's workflows and activities. Scale it horizontally.

Run with `loraflow worker` (or `python worker.py`); configuration comes from the environment.

This module is the composition root: the one place that builds the worker's dependencies (the
database pools, storage, the compute provider, the Replicate clients, the judges, the automatic
screen, the SDXL pipeline of the keyframe path) and hands them to the activity classes. Nothing
in ``loraflow/`` imports it, ``activities/`` or ``workflows/``.

Two roles, each on its own task queue:

- ``training`` (``loraflow worker``; ``LORAFLOW_TASK_QUEUE``): the workflows and every activity
  of training and validation. It needs no GPU and no base model: pods (or Replicate) train and
  generate; it only judges (face or image embedding, on its CPU) and keeps the records.
- ``gpu`` (``loraflow worker --gpu``; ``LORAFLOW_GPU_TASK_QUEUE``): ``plan_clip``, the keyframe
  (pre-process) path, with the SDXL pipeline loaded, or with ``LORAFLOW_KEYFRAMES=replicate``
  through Replicate predictions (then it needs no GPU either).

``loraflow dev`` runs both in one process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool, ConnectionPool
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from loraflow.compute import ComputeProvider
from loraflow.compute.replicate import ReplicateTrainer
from loraflow.db import create_pool
from loraflow.logging import configure_logging, get_logger
from loraflow.settings import Settings, get_settings
from loraflow.storage import Storage
from loraflow.temporal.schedules import ensure_schedules
from workflows import WORKFLOWS

if TYPE_CHECKING:
    from activities.validation import Judges
    from loraflow.compute.replicate import ReplicateConfig, ReplicatePredictor
    from loraflow.ml.pipelines import SdxlPipeline

log = get_logger(__name__)
#: Sync activities (training I/O, image checks) run on this many threads, off the event loop.
ACTIVITY_THREADS = 16
TRAINING_ROLE, GPU_ROLE = "training", "gpu"
ALL_ROLES = frozenset({TRAINING_ROLE, GPU_ROLE})


# -- the dependencies ------------------------------------------------------------------------


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
            latency_s=settings.local_provider_latency_s,
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
                gpu_types=list(settings.runpod_gpu_types),
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


def _replicate_config(settings: Settings) -> ReplicateConfig | None:
    """Replicate's client configuration; None without a token."""
    if settings.replicate_api_token is None:
        return None
    from loraflow.compute.replicate import ReplicateConfig

    return ReplicateConfig(
        api_token=settings.replicate_api_token.get_secret_value(),
        destination=settings.replicate_destination,
        trainer_version=settings.replicate_trainer_version,
        base_url=settings.replicate_base_url,
        price_per_hour=settings.replicate_price_per_hour,
    )


def build_replicate_trainer(settings: Settings) -> ReplicateTrainer | None:
    """Replicate's trainings API, the fallback when the pod provider has no GPU; None without a token."""
    config = _replicate_config(settings)
    return None if config is None else ReplicateTrainer(config)


def build_replicate_predictor(settings: Settings) -> ReplicatePredictor | None:
    """Replicate's predictions API (validation of the fallback's LoRAs, Replicate keyframes)."""
    from loraflow.compute.replicate import ReplicatePredictor

    config = _replicate_config(settings)
    return None if config is None else ReplicatePredictor(config)


def build_judges(settings: Settings) -> Judges:
    """The face judge (dlib, on by default), the image-embedding judge where a model folder is
    configured, and the pixel judge for the tiny demo model only (it means nothing elsewhere)."""
    from activities.validation import Judges
    from loraflow.ml.judges import EmbeddingJudge, FaceJudge, PixelJudge

    return Judges(
        face=FaceJudge() if settings.face_judge else None,
        embedding=EmbeddingJudge(settings.judge_model) if settings.judge_model else None,
        pixel=PixelJudge() if settings.base_model == "tiny" else None,
    )


def create_activity_pool(settings: Settings) -> ConnectionPool:
    """The sync pool every sync activity reaches the database through (autocommit, tuple rows).
    Open it with ``pool.open()``; sized for the activity thread pool."""
    return ConnectionPool(
        settings.require_database_url(),
        min_size=1,
        max_size=ACTIVITY_THREADS,
        kwargs={"autocommit": True},
        open=False,
        name="loraflow-activities",
    )


class Dependencies:
    """What the activities need, built once per worker process; ``close()`` on shutdown.

    ``pool`` is the one way sync activities reach the database; ``async_pool`` serves the async
    ones (the job side, whose DB layer is async)."""

    def __init__(
        self, settings: Settings, client: Client, pool: ConnectionPool, async_pool: AsyncConnectionPool
    ) -> None:
        self.settings = settings
        self.client = client
        self.pool = pool
        self.async_pool = async_pool
        self._closers: list[Callable[[], object]] = []

    def activities(self) -> list[Callable[..., Any]]:
        """The training role's activities, each bound to its dependencies."""
        from loraflow.ml.pipelines import SdxlPipeline
        from loraflow.storage import build_storage

        # A path only: the local provider's pods train on it. This worker never loads it, but
        # for validate_image, which workflows started before validate-on-machine still call.
        base_model = resolve_base_model(self.settings)
        storage = build_storage(self.settings)
        provider = build_provider(self.settings, base_model)
        trainer = build_replicate_trainer(self.settings)
        predictor = build_replicate_predictor(self.settings)
        for client in (trainer, predictor):
            if client is not None:
                self._closers.append(client.close)
        return [
            *self._training(storage, provider, SdxlPipeline(base_model), trainer, predictor),
            *self._replicate(storage, trainer),
            *self._job_side(storage),
            *self._mail(),
            *self._housekeeping(storage, provider, trainer),
        ]

    def gpu_activities(self) -> list[Callable[..., Any]]:
        """The GPU role's: the clip planner, with keyframes from the loaded pipeline or Replicate."""
        from activities.apply import ApplyActivities
        from loraflow.domain.clips import ClipPlanner, KeyframeGenerator
        from loraflow.storage import build_storage

        settings = self.settings
        storage = build_storage(settings)
        keyframes: KeyframeGenerator
        if settings.keyframes == "replicate":
            from loraflow.ml.replicate_keyframes import ReplicateKeyframes

            predictor, trainer = build_replicate_predictor(settings), build_replicate_trainer(settings)
            if predictor is None or trainer is None:
                raise ValueError("LORAFLOW_KEYFRAMES=replicate needs LORAFLOW_REPLICATE_API_TOKEN")
            self._closers += [predictor.close, trainer.close]
            keyframes = ReplicateKeyframes(predictor, trainer, dsn=settings.require_database_url())
        else:
            from loraflow.ml.keyframes import LocalKeyframes, LoraFileCache
            from loraflow.ml.pipelines import SdxlPipeline

            cache = LoraFileCache(
                Path(settings.data_dir) / "lora-cache", storage, max_files=settings.lora_cache_files
            )
            keyframes = LocalKeyframes(SdxlPipeline(resolve_base_model(settings)), cache)
        # ClipPlanner (loraflow.domain) still opens its own connections from the DSN.
        planner = ClipPlanner(dsn=settings.require_database_url(), storage=storage, keyframes=keyframes)
        return [ApplyActivities(planner).plan_clip]

    def _training(
        self,
        storage: Storage,
        provider: ComputeProvider,
        pipeline: SdxlPipeline,
        trainer: ReplicateTrainer | None,
        predictor: ReplicatePredictor | None,
    ) -> list[Any]:
        from activities.library import InWorkerValidationActivities, LibraryActivities
        from activities.notify import NotifyActivities
        from activities.pods import PodActivities
        from activities.records import RecordActivities
        from activities.validation import ValidationActivities
        from loraflow.ml.screening import ImageScreen
        from loraflow.ml.validation import Validator

        settings, pool = self.settings, self.pool
        # One screen for the dataset and the validation images (its detector loads on first use).
        screen = ImageScreen.from_settings(settings)
        records = RecordActivities(pool=pool)
        library = LibraryActivities(pool=pool, storage=storage, settings=settings, screen=screen)
        pods = PodActivities(pool=pool, storage=storage, provider=provider)
        validation = ValidationActivities(
            storage=storage,
            provider=provider,
            judges=build_judges(settings),
            replicate=predictor,
            trainer=trainer,
            screen=screen,
        )
        in_worker = InWorkerValidationActivities(
            validator=Validator(pipeline), storage=storage, screen=screen
        )
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        notify = NotifyActivities(url=settings.webhook_url, secret=secret)
        return [
            records.record_status,
            library.prepare_dataset,
            pods.create_pod,
            pods.wait_pod_ready,
            pods.upload_images,
            pods.run_training,
            pods.poll_training,
            pods.download_artifact,
            pods.cleanup_pod,
            library.store_lora,
            validation.validate_on_pod,
            validation.validate_on_replicate,
            in_worker.validate_image,
            library.record_outcome,
            notify.send_webhook,
        ]

    def _replicate(self, storage: Storage, trainer: ReplicateTrainer | None) -> list[Any]:
        """The fallback's activities, registered only when Replicate is configured."""
        if trainer is None:
            return []
        from activities.replicate import ReplicateActivities

        replicate = ReplicateActivities(pool=self.pool, storage=storage, trainer=trainer)
        return [
            replicate.replicate_start,
            replicate.replicate_poll,
            replicate.replicate_download,
            replicate.replicate_cancel,
        ]

    def _job_side(self, storage: Storage) -> list[Any]:
        from activities.jobs import JobActivities

        jobs = JobActivities(pool=self.async_pool, storage=storage, settings=self.settings)
        return [jobs.create_job_lora, jobs.fetch_references, jobs.job_lora_status]

    def _mail(self) -> list[Any]:
        """The creator's e-mail (CreatorEmailWorkflow); registered without LORAFLOW_SMTP_URL too,
        where it answers "not sent" (trainings start the workflow either way)."""
        from activities.mail import MailActivities

        settings = self.settings
        mail = MailActivities(
            pool=self.async_pool, smtp=settings.smtp, sender=settings.smtp_from, link=settings.lora_link
        )
        return [mail.send_outcome_email]

    def _housekeeping(
        self, storage: Storage, provider: ComputeProvider, trainer: ReplicateTrainer | None
    ) -> list[Any]:
        from activities.maintenance import MaintenanceActivities
        from activities.sweeper import SweeperActivities

        maintenance = MaintenanceActivities(pool=self.pool, storage=storage)
        sweeper = SweeperActivities(
            providers=[provider], client=self.client, replicate=trainer, pool=self.pool
        )
        return [maintenance.purge_validation_images, maintenance.refresh_trending, sweeper.sweep_orphan_pods]

    async def close(self) -> None:
        for close in reversed(self._closers):
            close()
        await asyncio.to_thread(self.pool.close)
        await self.async_pool.close()


async def open_dependencies(settings: Settings, client: Client) -> Dependencies:
    pool = create_activity_pool(settings)
    async_pool = create_pool(settings.require_database_url(), min_size=1, max_size=8)
    await asyncio.to_thread(pool.open)
    await async_pool.open()
    return Dependencies(settings=settings, client=client, pool=pool, async_pool=async_pool)


# -- the worker ------------------------------------------------------------------------------


async def run_worker(
    settings: Settings, *, stop: asyncio.Event | None = None, roles: frozenset[str] = ALL_ROLES
) -> None:
    """Serve ``roles`` (``training``, ``gpu``: see the module docstring) until ``stop`` is set."""
    settings.require_database_url()
    runtime = None
    if settings.metrics_port:
        # The SDK's Prometheus exporter serves its own metrics and the ones loraflow records
        # through workflow.metric_meter() (see workflows/lora_training.py).
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=f"0.0.0.0:{settings.metrics_port}")
            )
        )
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, runtime=runtime
    )
    deps = await open_dependencies(settings, client)
    stop = stop or asyncio.Event()
    try:
        # Sync activities run here, off the event loop, so heartbeats keep flowing while they block.
        with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            workers = []
            if TRAINING_ROLE in roles:
                workers.append(
                    Worker(
                        client,
                        task_queue=settings.task_queue,
                        workflows=WORKFLOWS,
                        activities=deps.activities(),
                        activity_executor=executor,
                    )
                )
                await ensure_schedules(client, settings)
            if GPU_ROLE in roles:
                workers.append(
                    Worker(
                        client,
                        task_queue=settings.gpu_task_queue,
                        activities=deps.gpu_activities(),
                        activity_executor=executor,
                    )
                )
            async with contextlib.AsyncExitStack() as running:
                for worker in workers:
                    await running.enter_async_context(worker)
                    log.info(
                        "worker_started", task_queue=worker.task_queue, address=settings.temporal_address
                    )
                await stop.wait()
            log.info("worker_stopped")
    finally:
        await deps.close()


def main(roles: frozenset[str] = frozenset({TRAINING_ROLE})) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:  # here as well as in `loraflow worker`: `python worker.py` starts it too
        settings.refuse_dev_secret()
    except RuntimeError as exc:
        sys.exit(f"worker: {exc}")

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop=stop, roles=roles)

    asyncio.run(_run())


if __name__ == "__main__":
    main()
