"""RunPodProvider against a local server speaking RunPod's REST v2 subset (tests/fakes/runpod.py):
idempotent create by name, null runtime before ready, 429/5xx with Retry-After, GPU fallback,
a create whose response is lost, terminate and list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loraflow.compute import PodStatus, ProviderError
from loraflow.compute.runpod import GpusExhausted, RunPodConfig, RunPodProvider
from tests.fakes.runpod import FakeRunPod
from tests.fakes.server import serve

KEY = "rp-test-key"


@pytest.fixture
def fake(tmp_path: Path, tiny_model: Path) -> Iterator[tuple[FakeRunPod, str]]:
    runpod = FakeRunPod(api_key=KEY, workdir=tmp_path / "pods", base_model_override=str(tiny_model))
    with serve(runpod.app()) as url:
        yield runpod, url
    runpod.close()


def _provider(url: str, sleeps: list[float] | None = None, **overrides: object) -> RunPodProvider:
    config = RunPodConfig(
        api_key=KEY, image="trainer:test", token_secret="s3cret", base_url=url,
        gpu_types=["NVIDIA L40S", "NVIDIA GeForce RTX 4090"], **overrides,  # type: ignore[arg-type]
    )  # fmt: skip
    return RunPodProvider(config, sleep=(sleeps.append if sleeps is not None else lambda _: None))


def test_create_is_idempotent_and_ready_only_once_the_agent_answers(fake: tuple[FakeRunPod, str]) -> None:
    runpod, url = fake
    provider = _provider(url)
    pod = provider.create("lf-lora-train-a")
    assert pod.endpoint is None  # RUNNING, but runtime is still null
    assert provider.create("lf-lora-train-a").pod_id == pod.pod_id  # found by name: no second pod
    assert [m for m, p in runpod.requests if m == "POST"] == ["POST"]
    assert runpod.pods[pod.pod_id].env["LORAFLOW_AGENT_TOKEN"] == provider.token_for("lf-lora-train-a")
    assert pod.price_per_hour == pytest.approx(0.69)

    described = provider.describe(pod.pod_id)
    while described.endpoint is None:
        described = provider.describe(pod.pod_id)
    assert described.status == PodStatus.running
    headers = {"Authorization": f"Bearer {pod.token}"}
    with httpx.Client(base_url=described.endpoint, timeout=5) as agent:
        for _ in range(200):  # the agent process is starting
            try:
                if agent.get("/healthz", headers=headers).status_code == 200:
                    break
            except httpx.TransportError:
                import time

                time.sleep(0.1)
        assert agent.get("/progress", params={"wait_s": 0}, headers=headers).status_code == 200
        assert agent.get("/progress", params={"wait_s": 0}).status_code == 401

    assert [p.pod_id for p in provider.list_pods()] == [pod.pod_id]
    provider.terminate(pod.pod_id)
    provider.terminate(pod.pod_id)  # idempotent
    assert provider.describe(pod.pod_id).status == PodStatus.terminated
    assert provider.list_pods() == []


def test_429_storm_and_5xx_are_retried_honouring_retry_after(fake: tuple[FakeRunPod, str]) -> None:
    runpod, url = fake
    runpod.failures = [(429, {"retry-after": "3"})] * 3 + [(503, {}), (502, {})]
    sleeps: list[float] = []
    pod = _provider(url, sleeps).create("lf-storm")
    assert pod.pod_id in runpod.pods and len(runpod.live()) == 1
    assert sleeps[:3] == [3.0, 3.0, 3.0]  # as RunPod asked
    assert len(sleeps) == 5 and all(0 < s <= 30 for s in sleeps[3:])  # backoff without a header


def test_too_many_failures_is_a_retryable_provider_error(fake: tuple[FakeRunPod, str]) -> None:
    runpod, url = fake
    runpod.failures = [(500, {})] * 10
    with pytest.raises(ProviderError, match="answered 500") as failed:
        _provider(url, max_attempts=3).create("lf-down")
    assert failed.value.retryable


def test_no_instances_moves_to_the_next_gpu_type_then_gives_up(fake: tuple[FakeRunPod, str]) -> None:
    runpod, url = fake
    runpod.no_instances = {"NVIDIA L40S"}
    pod = _provider(url).create("lf-fallback")
    assert runpod.pods[pod.pod_id].gpu_type == "NVIDIA GeForce RTX 4090"
    runpod.no_instances = {"NVIDIA L40S", "NVIDIA GeForce RTX 4090"}
    with pytest.raises(
        GpusExhausted, match="no instances of NVIDIA L40S, NVIDIA GeForce RTX 4090"
    ) as exhausted:
        _provider(url).create("lf-none-left")
    assert not exhausted.value.retryable


def test_a_lost_create_response_finds_the_pod_instead_of_making_another(fake: tuple[FakeRunPod, str]) -> None:
    runpod, url = fake
    runpod.lose_next_create = True
    pod = _provider(url, timeout_s=1.0).create("lf-lost")
    assert [p.name for p in runpod.pods.values()] == ["lf-lost"]
    assert pod.pod_id in runpod.pods


def test_list_shows_only_loraflow_pods(fake: tuple[FakeRunPod, str]) -> None:
    _, url = fake
    provider = _provider(url)
    ours = provider.create("lf-ours")
    provider.create("someone-elses-notebook")
    assert [p.pod_id for p in provider.list_pods()] == [ours.pod_id]
