"""How long a training waits when its worker is killed, phase by phase: the fault drill behind the
README's "Failure behaviour" table.

    .venv/bin/python benchmarks/worker_kills.py

On the embedded stack (``loraflow dev``'s processes: Temporal dev server, PostgreSQL, API, worker),
one tiny training (the demo's, created through the API) runs undisturbed, then a
second one has its worker SIGKILLed in each phase while that phase's activity is running (Temporal
shows it started), and started again at once. Printed per phase: how long the phase lasts
undisturbed; from the kill to the lost activity's retry starting on the new worker (Temporal's
``last_started_time`` of attempt 2); from the kill to the next phase. The issue's bound is the
retry within 60 s.

The phases that last a fraction of a second on this machine are slowed the way the real ones are
slow, not by sleeping here: a provider's API latency (``LORAFLOW_LOCAL_PROVIDER_LATENCY_S``) for
creating and ending the pod, a store's round trip per file and its link's pace
(``LORAFLOW_LOCAL_STORAGE_LATENCY_S``, ``_WRITE_BPS``) for the images and the LoRA. Both trainings
run with the same settings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from loraflow.auth import issue_token
from loraflow.contracts.lora_training import TrainingOutcome, TrainingProgress
from loraflow.contracts.names import train_workflow_id
from loraflow.devstack.demo import draw_character
from loraflow.devstack.dev import DevStack
from loraflow.logging import configure_logging
from loraflow.net import free_port
from loraflow.settings import Settings

#: Each phase of a training on a pod, in order, and the activity that runs in it.
PHASES = {
    "preparing": "prepare_dataset",
    "creating_pod": "create_pod",
    "uploading": "upload_images",
    "training": "poll_training",
    "validating": "validate_on_pod",
    "downloading": "download_artifact",
    "cleaning_up": "cleanup_pod",
    "storing": "store_lora",
}
ORDER = [*PHASES, "completed", "failed"]
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
#: The worker's settings: a provider whose create and terminate take 4 s, and a store with a
#: second's round trip per file and a 300 KB/s link (the 1.4 MB LoRA: ~5 s down, ~5 s to store).
SLOWED = {
    "LORAFLOW_LOCAL_PROVIDER_LATENCY_S": "4",
    "LORAFLOW_LOCAL_STORAGE_LATENCY_S": "1",
    "LORAFLOW_LOCAL_STORAGE_WRITE_BPS": "300000",
}


@dataclass
class Kill:
    phase: str
    retried_after_s: float | None = None  # the kill → attempt 2 started
    next_phase_after_s: float = 0.0  # the kill → the next phase
    attempt: int = 1  # the attempt that finished the activity


@dataclass
class Training:
    lora_id: str
    handle: WorkflowHandle
    phase_started: dict[str, float] = field(default_factory=dict)


async def _progress(handle: WorkflowHandle) -> TrainingProgress | None:
    try:
        return await handle.query("progress", result_type=TrainingProgress)
    except RPCError:  # no worker to answer yet (one just killed or starting)
        return None


def _past(phase: str, progress: TrainingProgress | None) -> bool:
    if progress is None or progress.phase not in ORDER:
        return False
    return ORDER.index(progress.phase) > ORDER.index(phase)


async def _start(api: httpx.AsyncClient, client: Client, name: str) -> Training:
    files = [("images", (f"view{i}.png", draw_character(i), "image/png")) for i in range(4)]
    created = await api.post(
        "/api/v1/lora-models",
        data={"name": name},  # the dev stack's defaults: the demo's training
        files=files,
    )
    if created.status_code != 201:
        raise RuntimeError(f"create failed: {created.status_code} {created.text}")
    lora_id = created.json()["lora_id"]
    handle = client.get_workflow_handle(train_workflow_id(lora_id), result_type=TrainingOutcome)
    return Training(lora_id, handle)


async def _follow(training: Training, until: str) -> None:
    """Record when each phase is first seen (queries every 0.1 s) until ``until`` is reached."""
    while True:
        progress = await _progress(training.handle)
        if progress is not None:
            training.phase_started.setdefault(progress.phase, time.monotonic())
            if progress.phase == until or _past(until, progress):
                return
        await asyncio.sleep(0.1)


async def _running(handle: WorkflowHandle, activity: str) -> list:
    description = await handle.describe()
    return [
        a for a in description.raw_description.pending_activities
        if a.activity_type.name == activity
    ]  # fmt: skip


async def _kill_in(stack: DevStack, training: Training, phase: str) -> Kill:
    """Wait for ``phase`` with its activity running, SIGKILL the worker, start another at once,
    and time the retry and the next phase."""
    activity = PHASES[phase]
    await _follow(training, phase)
    while not any(a.state == STARTED for a in await _running(training.handle, activity)):
        if _past(phase, await _progress(training.handle)):
            raise RuntimeError(f"{phase} ended before its activity was seen running: slow it down")
        await asyncio.sleep(0.05)
    stack.kill_worker()
    killed, killed_wall = time.monotonic(), time.time()
    stack.start_worker(**SLOWED)
    kill = Kill(phase)
    while True:
        pending = await _running(training.handle, activity)
        retried = [a for a in pending if a.attempt >= 2 and a.state == STARTED]
        if retried and kill.retried_after_s is None:
            kill.retried_after_s = retried[0].last_started_time.ToDatetime().timestamp() - killed_wall
            kill.attempt = max(a.attempt for a in retried)
        progress = await _progress(training.handle)
        if _past(phase, progress):
            kill.next_phase_after_s = time.monotonic() - killed
            assert progress is not None
            training.phase_started.setdefault(progress.phase, time.monotonic())
            return kill
        await asyncio.sleep(0.1)


def _durations(training: Training) -> dict[str, float]:
    seen = sorted(training.phase_started.items(), key=lambda item: item[1])
    return {phase: seen[i + 1][1] - at for i, (phase, at) in enumerate(seen[:-1])}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", nargs="*", default=list(PHASES), choices=list(PHASES))
    args = parser.parse_args()
    os.environ["LORAFLOW_LOG_LEVEL"] = "WARNING"
    configure_logging("WARNING")
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="loraflow-kills-")),
        dev_temporal_port=free_port(),
        temporal_ui_port=free_port(),
        api_port=free_port(),
        log_level="WARNING",
    )
    stack = DevStack(settings)
    await stack.start()
    stack.kill_worker()  # the stack's own, started before any training: replaced with a slowed one
    stack.start_worker(**SLOWED)
    try:
        client = await Client.connect(f"127.0.0.1:{settings.dev_temporal_port}")
        user = str(uuid.uuid4())
        token = issue_token(settings.jwt_secret.get_secret_value(), user_id=user)
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api:
            # Undisturbed: how long each phase lasts with these settings.
            calm = await _start(api, client, "undisturbed")
            await _follow(calm, "completed")
            calm_outcome = await calm.handle.result()
            undisturbed = _durations(calm)

            killed = await _start(api, client, "killed in every phase")
            kills = [await _kill_in(stack, killed, phase) for phase in args.phases]
            outcome = await killed.handle.result()
    finally:
        stack.stop()

    print(f"\nworker SIGKILLed and started again at once, one kill per phase (the demo's tiny "
          f"training; undisturbed run: {calm_outcome.status}; "
          f"killed run: {outcome.status}, {outcome.pod_seconds:.0f} pod-seconds "
          f"against {calm_outcome.pod_seconds:.0f})")  # fmt: skip
    print(f"{'phase':<13} {'undisturbed':>12} {'kill → retry':>13} {'kill → next phase':>18}  attempt")
    for kill in kills:
        retried = f"{kill.retried_after_s:.1f} s" if kill.retried_after_s is not None else "—"
        print(
            f"{kill.phase:<13} {undisturbed.get(kill.phase, 0.0):>10.1f} s {retried:>13} "
            f"{kill.next_phase_after_s:>16.1f} s  {kill.attempt}"
        )


if __name__ == "__main__":
    asyncio.run(main())
