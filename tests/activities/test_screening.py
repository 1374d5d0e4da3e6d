"""Automatic screening in the worker, without training anything: the dataset screened before any
machine is rented (``prepare_dataset``), and validation images screened where they are judged
(``validate_on_pod``), with a LoRA whose checkpoint image was flagged hidden for review when its
outcome is recorded (``record_outcome``), as the API then shows it.

Real detector, real photos: the flagged image is skimage's astronaut photo screened with
FACE_FEMALE as the blocked label (NudeNet finds her face at 0.72; see
tests/loraflow/test_screening.py for why no explicit image is shipped). The pod is a stand-in
that serves fixed images over the agent's wire protocol (``training_scripts.agent_protocol``),
so no model is trained or run: the judging, screening, storing and recording are the worker's
own code.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from safetensors.numpy import save as save_safetensors
from skimage import data
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.library import LibraryActivities
from activities.validation import Judges, ValidationActivities
from loraflow.auth import issue_token
from loraflow.compute.local import LocalProvider
from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import (
    CheckpointInfo,
    PodHandle,
    PrepareDatasetInput,
    RecordOutcomeInput,
    StagedArtifact,
    StoreLoraInput,
    TrainingOutcome,
    ValidateOnPodInput,
)
from loraflow.contracts.names import CONTROL, FINAL_CHECKPOINT, staged_image_key, uploaded_image_key
from loraflow.contracts.status import TrainingStatus
from loraflow.domain.checkpoints import choose_checkpoint
from loraflow.ml.judges import PixelJudge
from loraflow.ml.screening import ImageScreen
from loraflow.settings import DEV_JWT_SECRET, Settings
from loraflow.storage.local import LocalStorage
from tests.fakes.server import serve
from tests.helpers.loras import character_png, new_lora, upload_images
from training_scripts import agent_protocol as wire


def _png(name: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(getattr(data, name)()).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def faces_blocked() -> ImageScreen:
    return ImageScreen(labels=["FACE_FEMALE"])


@pytest.fixture
def sync_pool(pg_dsn: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(pg_dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True) as pool:
        yield pool


@pytest.fixture
def storage(settings: Settings) -> LocalStorage:
    """The session's storage (the API's, whose signed URLs the detail serves)."""
    return LocalStorage(Path(settings.data_dir) / "storage")


# -- before training -------------------------------------------------------------------------


async def test_a_flagged_dataset_image_stops_the_training_before_a_machine(
    pool: AsyncConnectionPool,
    sync_pool: ConnectionPool,
    settings: Settings,
    storage: LocalStorage,
    faces_blocked: ImageScreen,
) -> None:
    """Images that never passed the API (a video job's references) are screened in
    prepare_dataset, the workflow's first activity: BadImage, not retryable, the image not staged."""
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(settings, user_id, lora_id, n=3)
    astronaut = uploaded_image_key(user_id, lora_id, 3, "png")
    storage.put(astronaut, [_png("astronaut")])
    library = LibraryActivities(pool=sync_pool, storage=storage, settings=settings, screen=faces_blocked)
    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(library.prepare_dataset, PrepareDatasetInput(lora_id, [*keys, astronaut]))
    assert refused.value.type == ErrorType.BAD_IMAGE and refused.value.non_retryable
    assert refused.value.message.startswith(
        "image 4 was refused by automatic screening (explicit content: FACE_"
    )
    assert storage.list(staged_image_key(lora_id, 3)) == []
    # The same images under the default screen: all staged.
    library = LibraryActivities(pool=sync_pool, storage=storage, settings=settings, screen=ImageScreen())
    prepared = ActivityEnvironment().run(
        library.prepare_dataset, PrepareDatasetInput(lora_id, [*keys, astronaut])
    )
    assert len(prepared.keys) == 4


# -- validation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pod_agent() -> Iterator[str]:
    """A pod that has "generated" its validation images: the base model's (the control: the
    coffee photo) and the final checkpoint's (the astronaut photo)."""
    images = {CONTROL: _png("coffee"), FINAL_CHECKPOINT: _png("astronaut")}
    files = {f"{name}.png": content for name, content in images.items()}

    async def generate(request: Request) -> JSONResponse:
        ask = wire.GenerateRequest(**await request.json())
        generated = [
            wire.GeneratedImage(name, f"{name}.png", hashlib.sha256(images[name]).hexdigest())
            for name in (CONTROL, *ask.checkpoints)
        ]
        return JSONResponse(
            {
                "request_id": ask.request_id,
                "state": wire.GenerationState.SUCCEEDED,
                "images": [vars(g) for g in generated],
                "seconds": 0.1,
            }
        )

    async def generated(request: Request) -> Response:
        return Response(files[request.path_params["file"]], media_type="image/png")

    app = Starlette(
        routes=[
            Route(wire.GENERATE_PATH, generate, methods=["POST"]),
            Route("/generated/{request_id}/{file}", generated),
        ]
    )
    with serve(app) as url:
        yield url


def _validate_on_pod(
    pod_agent: str, storage: LocalStorage, tmp_path: Path, screen: ImageScreen, lora_id: str, refs: list[str]
) -> Any:
    pod = PodHandle("local", "pod-1", "loraflow-test", pod_agent, "token", 0.0, 0.0)
    checkpoint = CheckpointInfo(FINAL_CHECKPOINT, 40, "0" * 64, 1)
    activities = ValidationActivities(
        storage=storage,
        provider=LocalProvider(tmp_path, base_model="unused"),
        judges=Judges(pixel=PixelJudge()),
        screen=screen,
    )
    request = ValidateOnPodInput(
        lora_id, f"train-{lora_id}", pod, 0, "a photo of ohwx character", 1000, 10, [checkpoint], refs
    )
    result = ActivityEnvironment().run(activities.validate_on_pod, request)
    return checkpoint, result


@pytest.mark.parametrize("blocked", [True, False], ids=["flagged", "clean"])
async def test_a_flagged_validation_image_hides_the_lora_for_review(
    blocked: bool,
    pool: AsyncConnectionPool,
    sync_pool: ConnectionPool,
    settings: Settings,
    storage: LocalStorage,
    faces_blocked: ImageScreen,
    pod_agent: str,
    api_url: str,
    tmp_path: Path,
) -> None:
    user_id, lora_id = await new_lora(pool)
    refs = [uploaded_image_key(user_id, lora_id, i, "png") for i in range(3)]
    for i, key in enumerate(refs):
        storage.put(key, [character_png(i)])
    screen = faces_blocked if blocked else ImageScreen()

    checkpoint, judged = _validate_on_pod(pod_agent, storage, tmp_path, screen, lora_id, refs)
    [image] = judged.checkpoints
    assert image.screening is not None and image.screening.flagged is blocked
    assert judged.control.screening is not None and not judged.control.screening.flagged
    if blocked:
        assert [f.label for f in image.screening.findings] == ["FACE_FEMALE"]

    # What the workflow does next: its verdict (pure code), then the activities that store the
    # kept checkpoint (a small LoRA file stands in for the downloaded one) and record the outcome.
    report = choose_checkpoint([checkpoint], [judged], asked=1, needed=0)
    assert report.chosen == FINAL_CHECKPOINT
    lora_file = save_safetensors({"unet.a.lora_A.weight": np.zeros(1, dtype=np.float32)})
    staged = storage.put(f"lora-staging/{lora_id}/final.safetensors", [lora_file])
    library = LibraryActivities(pool=sync_pool, storage=storage, settings=settings)
    stored = ActivityEnvironment().run(
        library.store_lora,
        StoreLoraInput(lora_id, StagedArtifact(staged.key, staged.size, staged.sha256), "ohwx"),
    )
    outcome = TrainingOutcome(lora_id, TrainingStatus.COMPLETED, stored=stored, validation=report)
    ActivityEnvironment().run(library.record_outcome, RecordOutcomeInput(f"train-{lora_id}", outcome))

    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                """SELECT training_status, hidden_at, hidden_reason,
                          validation_report #> '{prompts,0,checkpoints,0,screening}' AS screening
                     FROM lora_models WHERE id = %s""",
                [lora_id],
            )
        ).fetchone()
    assert row is not None and row["training_status"] == "completed"
    assert row["screening"]["flagged"] is blocked  # the stored report says why
    creator = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, user_id=user_id)}"}
    other_id = str(uuid.uuid4())
    other = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, user_id=other_id)}"}
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", timeout=30) as http:
        mine = (await http.get(f"/lora-models/{lora_id}", headers=creator)).json()
        theirs = await http.get(f"/lora-models/{lora_id}", headers=other)
        listed = (await http.get("/lora-models", params={"creator": user_id}, headers=other)).json()
    if blocked:
        assert row["hidden_at"] is not None
        assert row["hidden_reason"].startswith(
            "automatic screening: a validation image (prompt 1, step 40) shows explicit content "
            "(FACE_FEMALE 0."
        )
        assert mine["hidden_reason"] == row["hidden_reason"]  # its creator sees it, and why
        assert theirs.status_code == 404 and listed["pagination"]["total"] == 0  # nobody else
    else:
        assert row["hidden_at"] is None and row["hidden_reason"] is None
        assert mine["hidden_reason"] is None
        assert theirs.status_code == 200 and listed["pagination"]["total"] == 1
