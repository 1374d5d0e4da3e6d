"""The Temporal worker: runs loraflow's workflows and activities. Scale it horizontally.

Run with `loraflow worker` (or `python worker.py`); configuration comes from the environment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities import build_activities
from loraflow.db import create_pool
from loraflow.logging import configure_logging, get_logger
from loraflow.settings import Settings, get_settings
from loraflow.temporal.schedules import ensure_schedules
from workflows import WORKFLOWS

log = get_logger(__name__)


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
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
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        **({"runtime": runtime} if runtime else {}),
    )
    pool = create_pool(settings.database_url, min_size=1, max_size=8)
    await pool.open()
    stop = stop or asyncio.Event()
    # Sync activities (training I/O, image checks) run here, off the event loop, so
    # heartbeats keep flowing while they block.
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            activities=build_activities(settings, pool, client),
            activity_executor=executor,
        )
        await ensure_schedules(client, settings)
        log.info("worker_started", task_queue=settings.task_queue, address=settings.temporal_address)
        async with worker:
            await stop.wait()
        log.info("worker_stopped")
    await pool.close()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop=stop)

    asyncio.run(_run())


if __name__ == "__main__":
    main()
