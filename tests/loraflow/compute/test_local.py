"""The local compute provider: pods are pod-agent processes, found again by name, gone when terminated."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from loraflow.compute import PodStatus
from loraflow.compute.local import LocalProvider
from loraflow.errors import ProviderError


def _wait_ready(endpoint: str, token: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.get(f"{endpoint}/healthz", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_create_is_idempotent_by_name_and_terminate_confirms(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path, base_model="/nonexistent", price_per_hour=0.5)
    pod = provider.create("lora-train-abc").handle
    again = provider.create("lora-train-abc").handle
    assert again.pod_id == pod.pod_id and again.token == pod.token and again.endpoint == pod.endpoint
    assert len(provider.list_pods()) == 1
    _wait_ready(pod.endpoint, pod.token)
    pid = psutil.Process(
        next(
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if str(tmp_path) in " ".join(p.info["cmdline"] or [])
        )
    )
    assert provider.describe(pod.pod_id).status == PodStatus.running
    assert provider.price_per_hour() == 0.5

    provider.terminate(pod.pod_id)
    provider.terminate(pod.pod_id)  # idempotent
    assert provider.describe(pod.pod_id).status == PodStatus.terminated
    assert not pid.is_running() or pid.status() == psutil.STATUS_ZOMBIE
    assert provider.list_pods() == []
    with pytest.raises(ProviderError):
        provider.create("lora-train-abc")  # a terminated pod's name is not reused


def test_a_pod_outlives_its_creator_and_a_new_provider_finds_it(tmp_path: Path) -> None:
    first = LocalProvider(tmp_path, base_model="/nonexistent")
    pod = first.create("lora-train-x").handle
    _wait_ready(pod.endpoint, pod.token)
    # A second worker (or the same one after a restart) sees the same pod, not a new one.
    second = LocalProvider(tmp_path, base_model="/nonexistent")
    assert second.create("lora-train-x").handle == pod
    assert [p.handle.pod_id for p in second.list_pods()] == [pod.pod_id]
    second.terminate(pod.pod_id)


def test_a_crashed_agent_is_restarted_on_create(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path, base_model="/nonexistent")
    pod = provider.create("lora-train-crash").handle
    _wait_ready(pod.endpoint, pod.token)
    record_pid = next(
        p.pid for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    )
    os.kill(record_pid, signal.SIGKILL)
    psutil.Process(record_pid).wait(10)
    assert provider.describe(pod.pod_id).status == PodStatus.exited
    again = provider.create("lora-train-crash").handle
    assert again.pod_id == pod.pod_id
    _wait_ready(again.endpoint, again.token)
    provider.terminate(pod.pod_id)


def test_unknown_pods_describe_as_terminated(tmp_path: Path) -> None:
    assert LocalProvider(tmp_path, base_model="x").describe("local-nope").status == PodStatus.terminated


def test_a_pod_nobody_talks_to_ends_itself_and_stays_ended(tmp_path: Path) -> None:
    """The agent's dead-man switch: no authenticated request for LORAFLOW_AGENT_IDLE_S, so it
    records why and exits; the provider reports it terminated and never restarts it."""
    provider = LocalProvider(tmp_path, base_model="/nonexistent", agent_idle_s=2)
    pod = provider.create("lora-train-quiet").handle
    _wait_ready(pod.endpoint, pod.token)  # an authenticated request: the idle clock restarts
    deadline = time.monotonic() + 60
    while provider.describe(pod.pod_id).status != PodStatus.terminated:
        assert time.monotonic() < deadline, "the pod did not end itself"
        time.sleep(0.1)
    ended = json.loads((tmp_path / "pods" / "lora-train-quiet" / "ended.json").read_text())
    assert "no request from the workflow" in ended["reason"]
    assert provider.list_pods() == []
    with pytest.raises(ProviderError):
        provider.create("lora-train-quiet")  # not brought back to life
