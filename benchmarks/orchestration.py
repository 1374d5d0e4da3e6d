"""Orchestration overhead: what loraflow adds around the work a pod does.

    .venv/bin/python benchmarks/orchestration.py [--trainings 5] [--steps 1]

Starts the embedded stack (its own data dir and ports), then runs N trainings one after the
other through the HTTP API with a 1-step trainer on the tiny model. For each:

  total      POST /lora-models → status `completed` seen by the client (polling every 50 ms)
  agent      the pod's own work: training (the agent's started_at → finished_at) plus the
             validation (first validate_on_pod started → last completed: the pod generates,
             the worker judges; validate_image for workflows from before validate-on-machine)
  overhead   total - agent: everything loraflow does around that (API, Temporal, pod start,
             uploads, polling, download, cleanup, store, records)
  detection  training finished in the pod → the workflow's poll activity completed with it
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loraflow.auth import issue_token
from loraflow.contracts.names import train_workflow_id
from loraflow.devstack.demo import draw_character
from loraflow.devstack.dev import DevStack
from loraflow.logging import configure_logging
from loraflow.net import free_port
from loraflow.settings import Settings


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def history_times(client, workflow_id: str) -> dict[str, list[tuple[str, float]]]:
    """Per activity type: (event, unix time) for scheduled/started/completed events."""
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, str] = {}
    times: dict[str, list[tuple[str, float]]] = {}
    for event in history.events:
        t = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
            times.setdefault(scheduled[event.event_id], []).append(("scheduled", t))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            name = scheduled[event.activity_task_started_event_attributes.scheduled_event_id]
            times[name].append(("started", t))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            times[name].append(("completed", t))
    return times


async def main() -> None:
    import json

    from temporalio.client import Client

    parser = argparse.ArgumentParser()
    parser.add_argument("--trainings", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    configure_logging("WARNING")

    data_dir = Path(tempfile.mkdtemp(prefix="loraflow-orch-"))
    settings = Settings(
        data_dir=data_dir,
        dev_temporal_port=free_port(),
        temporal_ui_port=free_port(),
        api_port=free_port(),
        log_level="WARNING",
    )
    import os

    os.environ["LORAFLOW_LOG_LEVEL"] = "WARNING"
    stack = DevStack(settings)
    await stack.start()
    client = await Client.connect(f"127.0.0.1:{settings.dev_temporal_port}")
    totals, agents, overheads, detections = [], [], [], []
    try:
        files = [("images", (f"{i}.png", draw_character(i), "image/png")) for i in range(4)]
        for n in range(args.trainings):
            user = str(uuid.uuid4())
            token = issue_token(settings.jwt_secret.get_secret_value(), user_id=user)
            async with httpx.AsyncClient(
                base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as api:
                start = time.time()
                r = await api.post(
                    "/api/v1/lora-models",
                    data={"name": f"bench {n}", "training_params": json.dumps({"steps": args.steps})},
                    files=files,
                )
                r.raise_for_status()
                lora_id = r.json()["lora_id"]
                while True:
                    status = (await api.get(f"/api/v1/lora-models/{lora_id}/status")).json()
                    if status["training_status"] in ("completed", "failed"):
                        break
                    await asyncio.sleep(0.05)
                total = time.time() - start
            wf = train_workflow_id(lora_id)
            progress_file = data_dir / "pods" / f"lf-{wf}" / "progress.json"
            agent_state = json.loads(progress_file.read_text())
            training = agent_state["finished_at"] - agent_state["started_at"]
            times = await history_times(client, wf)
            validation = times.get("validate_on_pod") or times["validate_image"]
            generation = max(t for e, t in validation if e == "completed") - min(
                t for e, t in validation if e == "started"
            )
            last_poll = max(t for e, t in times["poll_training"] if e == "completed")
            detection = last_poll - agent_state["finished_at"]
            totals.append(total)
            agents.append(training + generation)
            overheads.append(total - training - generation)
            detections.append(detection)
            print(
                f"training {n}: {status['training_status']}, total {total:.2f}s, "
                f"pod training {training:.2f}s, validation generation {generation:.2f}s, "
                f"overhead {overheads[-1]:.2f}s, detection {detection:.3f}s"
            )
    finally:
        stack.stop()
    print(f"\n{args.trainings} trainings, {args.steps}-step trainer, tiny model, local provider")
    for label, values in (
        ("total", totals),
        ("agent work", agents),
        ("overhead", overheads),
        ("detection", detections),
    ):
        print(
            f"  {label:<11} p50 {statistics.median(values):7.3f}s   p95 {percentile(values, 95):7.3f}s"
            f"   max {max(values):7.3f}s"
        )


if __name__ == "__main__":
    asyncio.run(main())
