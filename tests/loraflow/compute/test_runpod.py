"""RunPodProvider against a local server that speaks RunPod's REST v2 as its published document
describes it (tests/fakes/runpod.py, validating every request against loraflow.compute.runpod_api):
the create body the document requires, idempotent create by name without a name filter, the
PROVISIONING → STARTING → RUNNING (runtime null) → ready sequence through RunPod's proxy, `cost`,
ERROR, every row of createPod's retry table, rate limits, and the pod's dead-man switch."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from psycopg_pool import ConnectionPool
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.pods import PodActivities
from loraflow.compute import PodStatus
from loraflow.compute.runpod import RunPodConfig, RunPodProvider
from loraflow.contracts.lora_training import PodHandle, WaitPodReadyInput
from loraflow.errors import GpusExhausted, ProviderError
from loraflow.storage.local import LocalStorage
from tests.fakes.runpod import FakeRunPod
from tests.fakes.server import serve

KEY = "rp-test-key"
L40S, RTX4090 = "NVIDIA L40S", "NVIDIA GeForce RTX 4090"


@pytest.fixture
def fake(tmp_path: Path, tiny_model: Path) -> Iterator[tuple[FakeRunPod, str]]:
    runpod = FakeRunPod(api_key=KEY, workdir=tmp_path / "pods", base_model_override=str(tiny_model))
    with serve(runpod.app()) as url:
        runpod.url = url
        yield runpod, url
    runpod.close()


def _provider(
    runpod: FakeRunPod, sleeps: list[float] | None = None, *, real_sleep: bool = False, **overrides: object
) -> RunPodProvider:
    config = RunPodConfig(
        api_key=KEY, image="trainer:test", token_secret="s3cret", base_url=runpod.url,
        proxy_url=runpod.proxy_url, gpu_types=[L40S, RTX4090], **overrides,  # type: ignore[arg-type]
    )  # fmt: skip

    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        if real_sleep:
            time.sleep(seconds)

    return RunPodProvider(config, sleep=sleep)


def _until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_create_sends_the_documented_body_and_is_idempotent_by_name(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    provider = _provider(runpod)
    created = provider.create("lf-lora-train-a")
    pod = created.handle
    body = runpod.pods[pod.pod_id].body
    # #/components/schemas/CreatePodRequest: gpu.id (not typeId), the tier as top-level `cloud`.
    assert body["gpu"] == {"id": L40S, "count": 1, "minCudaVersion": "12.6"}
    assert body["cloud"] == "SECURE" and body["ports"] == ["8080/http"]
    assert body["env"]["LORAFLOW_AGENT_TOKEN"] == provider.token_for("lf-lora-train-a")
    assert body["env"]["LORAFLOW_AGENT_IDLE_S"] == "900"
    assert int(body["env"]["LORAFLOW_AGENT_DEADLINE"]) == pytest.approx(time.time() + 3 * 3600, abs=60)
    assert created.status == PodStatus.starting and pod.endpoint is None  # 201 says PROVISIONING
    assert pod.price_per_hour == pytest.approx(0.69)  # `cost`, USD per hour

    provider.create("someone-elses-notebook")  # listPods cannot filter by name: ours is found anyway
    assert provider.create("lf-lora-train-a").handle.pod_id == pod.pod_id
    assert [m for m, p in runpod.requests if m == "POST"] == ["POST", "POST"]
    assert [p.handle.pod_id for p in provider.list_pods()] == [pod.pod_id]  # only loraflow's pods


def test_the_old_body_is_refused_with_422_and_never_retried(fake: tuple[FakeRunPod, str]) -> None:
    runpod, url = fake
    old = {"name": "lf-old", "image": "x", "gpu": {"typeId": L40S, "count": 1, "cloudType": "SECURE"}}
    r = httpx.post(f"{url}/v2/pods", json=old, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["title"] and problem["status"] == 422 and problem["detail"]
    assert any("gpu.id" in e for e in problem["errors"]) and any("typeId" in e for e in problem["errors"])
    assert runpod.pods == {}


def test_a_pod_becomes_ready_through_the_proxy_and_terminates(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    provider = _provider(runpod)
    created = provider.create("lf-ready")
    pod = created.handle
    seen = []
    while (described := provider.describe(pod.pod_id)).handle.endpoint is None:
        seen.append(described.status)
        assert len(seen) < 10
    # PROVISIONING (the create's answer), STARTING, then RUNNING with a null runtime: none of
    # them is reachable yet.
    assert created.status == PodStatus.starting and seen == [PodStatus.starting, PodStatus.running]
    assert described.handle.endpoint == f"{runpod.url}/proxy/{pod.pod_id}-8080"
    headers = {"Authorization": f"Bearer {pod.token}"}
    with httpx.Client(base_url=described.handle.endpoint, timeout=10) as agent:
        _until(lambda: agent.get("/healthz", headers=headers).status_code == 200)
        assert agent.get("/progress", params={"wait_s": 0}).status_code == 401

    provider.terminate(pod.pod_id)
    provider.terminate(pod.pod_id)  # a second DELETE gets 404: still fine
    gone = provider.describe(pod.pod_id)
    assert gone.status == PodStatus.terminated and gone.handle.price_per_hour == pytest.approx(0.69)
    assert provider.list_pods() == []


def test_429_storm_and_5xx_are_retried_honouring_retry_after(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    runpod.failures = [(429, {"Retry-After": "3"})] * 3 + [(503, {}), (502, {})]
    sleeps: list[float] = []
    pod = _provider(runpod, sleeps).create("lf-storm").handle
    assert pod.pod_id in runpod.pods and len(runpod.live()) == 1
    assert sleeps[:3] == [3.0, 3.0, 3.0]  # as RunPod asked
    assert len(sleeps) == 5 and all(0 < s <= 30 for s in sleeps[3:])  # backoff without a header


def test_too_many_failures_is_a_retryable_provider_error(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    runpod.failures = [(500, {})] * 10
    with pytest.raises(ProviderError, match="answered 500") as failed:
        _provider(runpod, max_attempts=3).create("lf-down")
    assert failed.value.retryable


def test_a_capacity_400_moves_to_the_next_gpu_type_then_to_the_next_provider(
    fake: tuple[FakeRunPod, str],
) -> None:
    runpod, _ = fake
    runpod.no_instances = {L40S}
    pod = _provider(runpod).create("lf-fallback").handle
    assert runpod.pods[pod.pod_id].gpu_type == RTX4090
    runpod.no_instances = {L40S, RTX4090}
    with pytest.raises(GpusExhausted, match="no longer any instances available") as exhausted:
        _provider(runpod).create("lf-none-left")
    assert L40S in str(exhausted.value) and RTX4090 in str(exhausted.value)
    assert not exhausted.value.retryable


def test_a_forbidden_pool_is_skipped_and_an_empty_balance_stops(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    runpod.forbidden_gpus = {L40S}
    pod = _provider(runpod).create("lf-skip").handle
    assert runpod.pods[pod.pod_id].gpu_type == RTX4090
    runpod.balance_empty = True
    with pytest.raises(ProviderError, match="balance") as stopped:
        _provider(runpod).create("lf-broke")
    assert not isinstance(stopped.value, GpusExhausted) and not stopped.value.retryable
    assert [m for m, p in runpod.requests if m == "POST"].count("POST") == 3  # stopped at the first 402


def test_a_lost_create_response_finds_the_pod_instead_of_making_another(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    runpod.lose_next_create = True
    pod = _provider(runpod, timeout_s=1.0).create("lf-lost").handle
    assert [p.name for p in runpod.pods.values()] == ["lf-lost"]
    assert pod.pod_id in runpod.pods


def test_a_spent_rate_limit_window_is_waited_out_not_hit(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    runpod.per_minute, runpod.window_s = 3, 2
    sleeps: list[float] = []
    provider = _provider(runpod, sleeps, real_sleep=True)
    pod = provider.create("lf-quota").handle  # list + create: two of the window's three
    for _ in range(4):
        provider.describe(pod.pod_id)
    assert runpod.rate_limited == 0  # the client never ran into a 429
    assert sleeps and all(s <= 2 for s in sleeps)  # it waited for the window's reset instead


def _activities(provider: RunPodProvider, tmp_path: Path) -> PodActivities:
    unused = ConnectionPool("", open=False)  # waiting for a pod needs no database
    return PodActivities(pool=unused, storage=LocalStorage(tmp_path / "objects"), provider=provider)


def _wait_input(pod_id: str, provider: RunPodProvider, name: str) -> WaitPodReadyInput:
    return WaitPodReadyInput(
        PodHandle("runpod", pod_id, name, None, provider.token_for(name), 0.69, time.time())
    )


def test_error_ends_the_wait_with_a_reason_and_terminates_the_pod(
    fake: tuple[FakeRunPod, str], tmp_path: Path
) -> None:
    runpod, _ = fake
    runpod.error_on_start = True
    provider = _provider(runpod)
    pod = provider.create("lf-broken").handle
    started = time.monotonic()
    with pytest.raises(ApplicationError, match="unrecoverable error state") as failed:
        ActivityEnvironment().run(
            _activities(provider, tmp_path).wait_pod_ready, _wait_input(pod.pod_id, provider, pod.name)
        )
    assert failed.value.non_retryable and failed.value.type == "PodFailed"
    assert time.monotonic() - started < 30  # not the 20-minute activity timeout
    assert runpod.pods[pod.pod_id].terminated


def test_waiting_for_a_slow_pod_polls_runpod_with_backoff(
    fake: tuple[FakeRunPod, str], tmp_path: Path
) -> None:
    runpod, _ = fake
    runpod.runtime_after_gets = 10**9  # the image is still being pulled
    provider = _provider(runpod)
    pod = provider.create("lf-slow").handle
    result: list[PodHandle] = []
    waiter = threading.Thread(
        target=lambda: result.append(
            ActivityEnvironment().run(
                _activities(provider, tmp_path).wait_pod_ready, _wait_input(pod.pod_id, provider, pod.name)
            )
        ),
        daemon=True,
    )
    started = time.monotonic()
    waiter.start()
    _until(lambda: runpod.pods[pod.pod_id].gets >= 4, timeout=60)
    # 2 s, then 3 s, then 4.5 s between GETs (not several a second): RunPod's quota is per minute.
    assert time.monotonic() - started >= 9
    runpod.runtime_after_gets = 0  # the container runs
    waiter.join(60)
    assert result and result[0].endpoint == f"{runpod.url}/proxy/{pod.pod_id}-8080"
    assert runpod.rate_limited == 0


def test_a_pod_whose_workflow_went_quiet_removes_itself(fake: tuple[FakeRunPod, str]) -> None:
    """The dead-man switch: no request reaches the agent, so it deletes its own pod with the
    pod-scoped RUNPOD_API_KEY through the v2 API."""
    runpod, _ = fake
    provider = _provider(runpod, agent_idle_s=2)
    pod = provider.create("lf-orphan").handle
    _until(lambda: runpod.pods[pod.pod_id].terminated, timeout=60)
    assert runpod.pods[pod.pod_id].terminated_by == "pod"
    assert ("DELETE", f"/v2/pods/{pod.pod_id}") in runpod.requests
    assert provider.describe(pod.pod_id).status == PodStatus.terminated


def test_a_pod_ends_itself_at_its_deadline_even_while_polled(fake: tuple[FakeRunPod, str]) -> None:
    runpod, _ = fake
    provider = _provider(runpod, max_pod_s=6)
    pod = provider.create("lf-overdue").handle
    while (described := provider.describe(pod.pod_id).handle).endpoint is None:
        pass
    headers = {"Authorization": f"Bearer {pod.token}"}
    with httpx.Client(base_url=described.endpoint, timeout=10) as agent:

        def polled_until_gone() -> bool:
            with contextlib.suppress(httpx.TransportError):
                agent.get("/progress", params={"wait_s": 0}, headers=headers)
            return runpod.pods[pod.pod_id].terminated

        _until(polled_until_gone, timeout=60)
    assert runpod.pods[pod.pod_id].terminated_by == "pod"
