"""PodActivities in an ActivityEnvironment, against the local provider's real processes: a pod
whose agent is gone is reported lost at once (PodLost, which the workflow answers with a new
pod), and a blocking call keeps heartbeating while it runs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from psycopg_pool import ConnectionPool
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.heartbeats import heartbeating
from activities.pods import PodActivities
from loraflow.compute.local import LocalProvider
from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import PollTrainingInput
from loraflow.storage.local import LocalStorage


def test_a_poll_of_a_pod_whose_agent_died_says_the_pod_is_lost(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path, base_model="unused")
    pod = provider.create("lf-activity-test").handle
    pid = json.loads((tmp_path / "pods" / "lf-activity-test.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(10)
    activities = PodActivities(
        pool=ConnectionPool("", open=False),  # the poll fails before it records anything
        storage=LocalStorage(tmp_path / "objects"),
        provider=provider,
    )
    started = time.monotonic()
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(activities.poll_training, PollTrainingInput("wf", pod, -1, 10.0))
    assert raised.value.type == ErrorType.POD_LOST and raised.value.non_retryable
    assert "the training machine was lost" in raised.value.message
    assert time.monotonic() - started < 5  # at once, not after the long poll's wait
    provider.terminate(pod.pod_id)


def test_a_blocking_call_keeps_heartbeating(tmp_path: Path) -> None:
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    def blocking_activity() -> None:
        with heartbeating("generating", every_s=0.05):
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and len(beats) < 3:
                time.sleep(0.01)  # the call that cannot heartbeat itself

    env.run(blocking_activity)
    assert len(beats) >= 3 and beats[0] == ("generating",)
