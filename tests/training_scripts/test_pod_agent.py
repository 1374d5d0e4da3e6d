"""The pod agent over real HTTP, as a subprocess, training the tiny model."""

from __future__ import annotations

import hashlib
import io
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from psycopg_pool import ConnectionPool
from temporalio.testing import ActivityEnvironment

from activities.pods import PodActivities
from loraflow.compute.local import LocalProvider
from loraflow.contracts.lora_training import PodHandle, PollTrainingInput
from loraflow.contracts.names import training_log_key
from loraflow.devstack.embedded import child_env, stop_process
from loraflow.net import free_port
from loraflow.storage.local import LocalStorage


@pytest.fixture
def agent(tmp_path: Path, tiny_model: Path) -> Iterator[tuple[httpx.Client, Path]]:
    port = free_port()
    token = secrets.token_urlsafe(24)
    workdir = tmp_path / "pod"
    proc = subprocess.Popen(
        [sys.executable, "-m", "training_scripts.pod_agent", "--host", "127.0.0.1", "--port", str(port),
         "--workdir", str(workdir)],
        env=child_env(LORAFLOW_AGENT_TOKEN=token, LORAFLOW_BASE_MODEL=str(tiny_model)),
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "the agent exited"
        try:
            r = client.get("/healthz")
            assert r.status_code == 200, r.text  # it answers, so it must answer correctly
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the agent did not start listening"
            time.sleep(0.05)
    yield client, workdir
    client.close()
    stop_process(proc)


def _upload(client: httpx.Client, images: Path) -> None:
    for path in sorted(images.iterdir()):
        body = path.read_bytes()
        r = client.put(
            f"/images/{path.name}", content=body, headers={"X-Sha256": hashlib.sha256(body).hexdigest()}
        )
        assert r.status_code == 200 and r.json()["stored"] is True


def test_trains_and_serves_the_artifact_and_repeats_are_no_ops(
    agent: tuple[httpx.Client, Path], character_images: Path
) -> None:
    client, _ = agent
    _upload(client, character_images)
    first = sorted(character_images.iterdir())[0]
    again = client.put(f"/images/{first.name}", content=first.read_bytes())
    assert again.json()["stored"] is False  # same bytes again: nothing to do

    request = {"run_id": "lora-train-1", "params": {"steps": 4, "resolution": 64, "rank": 4, "alpha": 4}}
    r = client.post("/train", json=request)
    assert r.status_code == 202 and r.json()["state"] == "training"
    r = client.post("/train", json=request)  # a retried request does not start a second training
    assert r.status_code == 200 and r.json()["run_id"] == "lora-train-1"
    assert client.post("/train", json={**request, "run_id": "other"}).status_code == 409
    assert client.put("/images/new.png", content=b"x").status_code == 409  # dataset is frozen now

    version, seen_steps = -1, set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        p = client.get("/progress", params={"after": version, "wait_s": 10}, timeout=20).json()
        version = p["version"]
        seen_steps.add(p["step"])
        if p["state"] != "training":
            break
    assert p["state"] == "succeeded", p
    assert p["total_steps"] == 4 and p["step"] == 4 and p["eta_s"] == 0
    assert max(seen_steps) == 4
    # Saved at 50 % and 75 % of the steps, and the artifact at the end.
    assert [(c["name"], c["step"]) for c in p["checkpoints"]] == [
        ("step-000002", 2),
        ("step-000003", 3),
        ("final", 4),
    ]
    assert p["checkpoints"][-1]["sha256"] == p["sha256"]
    middle = client.get("/artifact", params={"checkpoint": "step-000002"})
    assert middle.status_code == 200
    assert (
        hashlib.sha256(middle.content).hexdigest()
        == middle.headers["x-sha256"]
        == p["checkpoints"][0]["sha256"]
    )
    assert middle.content != client.get("/artifact").content
    assert client.get("/artifact", params={"checkpoint": "step-000001"}).status_code == 404

    r = client.get("/artifact")
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == r.headers["x-sha256"] == p["sha256"]
    assert len(r.content) == p["size"]
    kohya = client.get("/artifact", params={"layout": "kohya"})
    assert kohya.status_code == 200 and kohya.content != r.content

    _generates_validation_images(client, [c["name"] for c in p["checkpoints"]])


def _generates_validation_images(client: httpx.Client, checkpoints: list[str]) -> None:
    """/generate: the control and every checkpoint's image for each prompt, the prompts sent
    at once generated as one batch; a repeated request gets the same images back."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    def ask(index: int) -> httpx.Response:
        prompt = f"a photo of ohwx character {index}"
        body = {"request_id": f"v{index}", "prompt": prompt, "seed": 1000 + index,
                "checkpoints": checkpoints, "steps": 4}  # fmt: skip
        deadline = time.monotonic() + 300
        while True:  # a long poll: the same request again until it has finished
            r = client.post("/generate", params={"wait_s": 30}, json=body, timeout=60)
            if r.json()["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
                return r

    with ThreadPoolExecutor(3) as pool:
        answers = [r.json() for r in pool.map(ask, range(3))]
    assert [a["state"] for a in answers] == ["succeeded"] * 3, answers
    assert len({a["seconds"] for a in answers}) == 1  # one batch, not three
    for answer in answers:
        images = {i["checkpoint"]: i for i in answer["images"]}
        assert set(images) == {"base", *checkpoints}
        pixels = {}
        for name, image in images.items():
            r = client.get(f"/generated/{answer['request_id']}/{image['file']}")
            assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == image["sha256"]
            with Image.open(io.BytesIO(r.content)) as png:
                pixels[name] = png.tobytes()
        assert pixels["final"] != pixels["base"]  # the LoRA changes the image the seed gives
    again = ask(0).json()
    assert again == answers[0]  # kept: not generated again
    assert client.post("/generate", json={**_body(), "checkpoints": ["step-000009"]}).status_code == 404
    assert client.post("/generate", json={**_body(), "seed": -1}).status_code == 422
    assert client.post("/generate", json={**_body(), "extra": 1}).status_code == 422
    assert client.get("/generated/v0/../progress.json").status_code == 404
    assert client.get("/generated/nothing/base.png").status_code == 404


def _body() -> dict[str, object]:
    return {"request_id": "x", "prompt": "p", "seed": 1, "checkpoints": ["final"]}


def test_long_poll_returns_at_the_end_not_at_the_timeout(
    agent: tuple[httpx.Client, Path], character_images: Path
) -> None:
    client, _ = agent
    _upload(client, character_images)
    client.post("/train", json={"run_id": "r", "params": {"steps": 2, "resolution": 64, "rank": 4}})
    p = _until_finished(client)
    answered = time.time()
    assert p["state"] == "succeeded"
    # It answered when the training ended, not when its 60 s wait ran out (however long the
    # training took on a busy machine).
    assert answered - p["finished_at"] < 5


def _until_finished(client: httpx.Client) -> dict:
    """Long-poll until the training ends (on a loaded machine one 60 s wait may not be enough)."""
    for _ in range(5):
        p = client.get(
            "/progress", params={"wait_s": 60, "terminal_only": True, "after": -1}, timeout=90
        ).json()
        if p["state"] in ("succeeded", "failed"):
            return p
    raise AssertionError(f"the training never finished: {p}")


def test_a_failed_training_reports_why_and_its_log_is_kept(
    agent: tuple[httpx.Client, Path], character_images: Path, pg_dsn: str, tmp_path: Path
) -> None:
    """The agent says why; the worker's poll keeps the reason and the trainer's log in storage
    (the failure in the workflow's history carries only the key: Temporal caps its size)."""
    client, _ = agent
    _upload(client, character_images)
    client.post("/train", json={"run_id": "r", "params": {"optimizer": "sgd", "resolution": 64}})
    p = _until_finished(client)
    assert p["state"] == "failed" and "unknown optimizer" in p["error"]
    assert client.get("/artifact").status_code == 409

    storage = LocalStorage(tmp_path / "objects")
    token = client.headers["Authorization"].removeprefix("Bearer ")
    pod = PodHandle("local", "pod-1", "lf-x", str(client.base_url), token, 0.0, time.time())
    with ConnectionPool(pg_dsn, min_size=1, max_size=1) as pool:
        activities = PodActivities(
            pool=pool, storage=storage, provider=LocalProvider(tmp_path, base_model="x")
        )
        polled = ActivityEnvironment().run(
            activities.poll_training, PollTrainingInput("lora-train-x", pod, -1, 5)
        )
    key = training_log_key("lora-train-x", "pod-1")
    assert polled.error is not None and polled.error.endswith(f"[full log: {key}]")
    kept = b"".join(storage.get(key)).decode()
    assert kept.startswith(p["error"]) and "--- trainer log ---" in kept


def test_requests_need_the_pod_token(agent: tuple[httpx.Client, Path]) -> None:
    client, _ = agent
    url = str(client.base_url)
    assert httpx.get(f"{url}/healthz").status_code == 401
    assert (
        httpx.get(f"{url}/progress", headers={"Authorization": "Bearer wrong-token-wrong"}).status_code == 401
    )
    assert client.put("/images/../../etc.png", content=b"x").status_code in (400, 404)
    assert client.put("/images/a.png", content=b"x", headers={"X-Sha256": "0" * 64}).status_code == 400


def test_the_trainer_dies_with_its_agent(tmp_path: Path, tiny_model: Path, character_images: Path) -> None:
    """A pod agent killed mid-training (SIGKILL: no chance to clean up) takes its trainer with it;
    an orphaned trainer would train on, and bill, for nobody."""
    import psutil

    port, token, workdir = free_port(), secrets.token_urlsafe(24), tmp_path / "pod"
    proc = subprocess.Popen(
        [sys.executable, "-m", "training_scripts.pod_agent", "--host", "127.0.0.1", "--port", str(port),
         "--workdir", str(workdir)],
        env=child_env(LORAFLOW_AGENT_TOKEN=token, LORAFLOW_BASE_MODEL=str(tiny_model)),
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the agent did not start listening"
                time.sleep(0.05)
        _upload(client, character_images)
        # No progress lines for a long while (as in a long load or cache phase): a trainer that only
        # died of a broken stdout pipe would live on.
        params = {"steps": 100000, "resolution": 64, "progress_every_s": 100000}
        r = client.post("/train", json={"run_id": "orphan", "params": params})
        assert r.status_code == 202, r.text
        run_file = str(workdir / "run.json")
        deadline = time.monotonic() + 30
        while not (
            trainers := [p for p in psutil.process_iter(["cmdline"]) if run_file in (p.info["cmdline"] or [])]
        ):
            assert time.monotonic() < deadline, "no trainer started"
            time.sleep(0.05)
        (trainer,) = trainers
        deadline = time.monotonic() + 120
        while client.get("/progress").json()["phase"] != "training":  # past its last line of output
            assert time.monotonic() < deadline, "the trainer did not reach its training loop"
            time.sleep(0.1)
        proc.kill()
        proc.wait(10)
        trainer.wait(10)  # psutil.TimeoutExpired if the trainer outlives its agent
        assert not trainer.is_running()
    finally:
        client.close()
        stop_process(proc)
