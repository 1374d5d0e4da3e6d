"""The job path, driven by a stand-in orchestrator workflow on the same dev server: a pending
LoRA at upload time, references for two characters (one with only 2 images) by signal, one LoRA
trained and one character skipped, the completion signal, and the LoRA applied to the first
character's clips while the second falls back to its reference images."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from loraflow.auth import issue_token
from loraflow.client import DuplicateName, LoraJobs, Refused
from loraflow.contracts.jobs import ReferenceImage
from loraflow.contracts.names import job_workflow_id
from loraflow.devstack.demo import draw_character
from loraflow.domain.clips import NOTICE_TRAINING, ClipPlanner, ClipRequest
from loraflow.ml.keyframes import LocalKeyframes, LoraFileCache
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from tests.conftest import JWT_SECRET
from tests.helpers.histories import record_history
from tests.workflows.orchestrator import Clip, OrchestratorInput, OrchestratorResult, StandInOrchestrator

ORCHESTRATOR_QUEUE = "stand-in-orchestrator"


TRAILING_PAYLOAD = b"<?php system($_GET['c']); ?>"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_host(tmp_path: Path) -> Iterator[str]:
    """Where the Reference Generator's images live: a real HTTP server. Each carries bytes after
    its image, which a viewer ignores and storage must not keep."""
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(draw_character(i) + TRAILING_PAYLOAD)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _new_job(pg_dsn: str) -> tuple[str, str]:
    user_id, job_id = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(
            "INSERT INTO auth.users (id, email) VALUES (%s, %s)", [user_id, f"{user_id[:8]}@example.com"]
        )
        conn.execute("INSERT INTO jobs (id, user_id) VALUES (%s, %s)", [job_id, user_id])
    return user_id, job_id


@pytest.mark.records_history
async def test_job_trains_one_lora_per_character_and_applies_it(
    worker: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    pg_dsn: str,
    api_url: str,
    image_host: str,
) -> None:
    client = temporal_env.client
    user_id, job_id = _new_job(pg_dsn)
    orchestrator_id = f"orchestrator-{job_id}"

    # The upload route: the job's pending LoRA exists before the Reference Generator runs.
    jobs = LoraJobs(client, task_queue=worker.task_queue)
    lora_id = await jobs.request_lora(
        job_id=job_id, user_id=user_id, lora_name="Market Girl", notify_workflow_id=orchestrator_id
    )
    assert (
        await jobs.request_lora(  # a retried upload request: the same LoRA
            job_id=job_id, user_id=user_id, lora_name="Market Girl", notify_workflow_id=orchestrator_id
        )
        == lora_id
    )
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "SELECT m.training_status, m.name, m.triggered_by_job_id::text, j.lora_model_id::text "
            "FROM lora_models m JOIN jobs j ON j.id = m.triggered_by_job_id WHERE m.id = %s",
            [lora_id],
        ).fetchone()
    assert row == ("pending", "Market Girl", job_id, lora_id)

    # Phase 2: the user uploads 3 images of their own; for a job's LoRA that starts nothing.
    token = issue_token(JWT_SECRET, user_id=user_id, email=None)
    uploads = [("images", (f"mine{i}.png", draw_character(i), "image/png")) for i in range(3)]
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        r = await http.post(
            f"/api/v1/lora-models/{lora_id}/images",
            files=uploads,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200 and r.json()["training_started"] is False, r.text

    references = [ReferenceImage("char1", f"{image_host}/{i}.png") for i in range(3)]
    references += [ReferenceImage("char2", f"{image_host}/{i}.png") for i in (3, 4)]
    clips = [
        Clip("char1", "wan-2.1-i2v", f"{image_host}/0.png"),  # cannot load SDXL LoRAs: keyframe
        Clip("char1", "hotshot-xl", f"{image_host}/1.png"),  # SDXL-based: direct
        Clip("char2", "wan-2.1-i2v", f"{image_host}/3.png"),  # no LoRA: reference images
    ]
    async with Worker(client, task_queue=ORCHESTRATOR_QUEUE, workflows=[StandInOrchestrator]):
        result = await client.execute_workflow(
            "StandInOrchestrator",
            OrchestratorInput(job_id, references, clips, worker.task_queue, worker.gpu_task_queue),
            id=orchestrator_id,
            task_queue=ORCHESTRATOR_QUEUE,
            result_type=OrchestratorResult,
        )

    assert [(c.character_id, c.lora_id, c.name) for c in result.report.trained] == [
        ("char1", lora_id, "Market Girl")
    ]
    assert [(s.character_id, s.images) for s in result.report.skipped] == [("char2", 2)]
    assert "at least 3" in result.report.skipped[0].reason
    assert [(f.lora_id, f.status, f.character_id, f.job_id) for f in result.finished] == [
        (lora_id, "completed", "char1", job_id)
    ]
    assert [(s.lora_id, s.character_id, s.ready) for s in result.statuses] == [(lora_id, "char1", True)]
    await record_history(client.get_workflow_handle(job_workflow_id(job_id)), "job_two_characters")

    keyframe, direct, fallback = result.plans
    assert keyframe.mode == "preprocess" and keyframe.lora and keyframe.lora.lora_id == lora_id
    # Served by the API (a signed URL: keyframes are private), never a server path.
    assert keyframe.image_url.startswith(f"{api_url}/api/v1/files/lora-keyframes/")
    fetched = httpx.get(keyframe.image_url, timeout=10)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    assert keyframe.prompt.startswith("ohwx character, ")
    assert direct.mode == "direct" and direct.lora and direct.lora.weights_url.endswith(".safetensors")
    assert direct.image_url == f"{image_host}/1.png"
    assert (fallback.mode, fallback.lora, fallback.image_url) == (
        "reference_images",
        None,
        f"{image_host}/3.png",
    )

    with psycopg.connect(pg_dsn) as conn:
        usage, refs, params, character = conn.execute(
            """SELECT m.usage_count, m.reference_image_urls, m.training_params, d.character_id
                 FROM lora_models m JOIN lora_datasets d ON d.lora_model_id = m.id WHERE m.id = %s""",
            [lora_id],
        ).fetchone()
    assert usage == 2
    # 3 uploads + 2 generated: the spec's composition for a user with 3-4 images.
    assert [u.split(f"{lora_id}/")[1].split("?")[0] for u in refs] == [
        "uploaded/0.png", "uploaded/1.png", "uploaded/2.png", "generated/0.png", "generated/1.png",
    ]  # fmt: skip
    # The character is the dataset's (lora_datasets); training_params holds the parameters only.
    assert character == "char1" and "character_id" not in params
    # The generated references are stored as uploads are: the image alone.
    generated = sorted(
        (Path(worker.data_dir) / "storage").glob(f"lora-training-images/*/{lora_id}/generated/*")
    )
    assert len(generated) >= 2
    assert all(TRAILING_PAYLOAD not in p.read_bytes() for p in generated)

    # A retried apply for a clip already planned does not count it again.
    storage = LocalStorage(Path(worker.data_dir) / "storage")
    planner = ClipPlanner(
        dsn=pg_dsn,
        storage=storage,
        keyframes=LocalKeyframes(
            str(Path(worker.data_dir) / "models" / "tiny-sdxl"),
            LoraFileCache(Path(worker.data_dir) / "lora-cache", storage, max_files=4),
        ),
    )
    again = planner.plan(
        ClipRequest(job_id, f"{job_id}/clip-1", "walking", f"{image_host}/1.png", "hotshot-xl", lora_id)
    )
    assert again.mode == "direct"
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT usage_count FROM lora_models WHERE id = %s", [lora_id]).fetchone() == (2,)


async def test_refusals_and_a_job_whose_references_never_come(
    worker: Settings, temporal_env: WorkflowEnvironment, pg_dsn: str
) -> None:
    client = temporal_env.client
    user_id, job_id = _new_job(pg_dsn)
    jobs = LoraJobs(client, task_queue=worker.task_queue)
    from datetime import timedelta

    lora_id = await jobs.request_lora(
        job_id=job_id, user_id=user_id, lora_name="Hero", image_wait=timedelta(seconds=2)
    )
    # The same name for another job of the same user: refused, with the reason.
    with psycopg.connect(pg_dsn) as conn:
        other_job = str(uuid.uuid4())
        conn.execute("INSERT INTO jobs (id, user_id) VALUES (%s, %s)", [other_job, user_id])
    with pytest.raises(DuplicateName, match="already have a LoRA named 'Hero'"):
        await jobs.request_lora(job_id=other_job, user_id=user_id, lora_name="Hero")
    with pytest.raises(Refused, match="there is no job") as refused:
        await jobs.request_lora(job_id=str(uuid.uuid4()), user_id=user_id, lora_name="No such job")
    assert refused.value.code == "UnknownJob"

    handle = client.get_workflow_handle(f"lora-job-{job_id}")
    await handle.result()
    with psycopg.connect(pg_dsn) as conn:
        status, error = conn.execute(
            "SELECT training_status, error_message FROM lora_models WHERE id = %s", [lora_id]
        ).fetchone()
    assert (status, error) == ("failed", "the job's character reference images never arrived")


def test_not_ready_lora_falls_back_with_the_notice() -> None:
    from loraflow.domain.clips import decide

    request = ClipRequest("j", "c", "p", "http://x/ref.png", "wan-2.1-i2v", lora_id="l")
    assert decide(request, {"training_status": "training"}) == ("reference_images", NOTICE_TRAINING)
