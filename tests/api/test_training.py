"""Training through the HTTP API: uploads checked before anything exists, idempotent starts,
live status from the workflow, cancellation, and the whole path to a completed LoRA."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image
from temporalio.testing import WorkflowEnvironment

from loraflow.compute import PodStatus
from loraflow.compute.local import LocalProvider
from loraflow.contracts.lora_training import TrainingProgress
from loraflow.contracts.names import train_workflow_id
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from tests.conftest import User
from tests.helpers.histories import record_history
from tests.helpers.loras import character_png
from tests.helpers.mailbox import Mailbox


async def _assert_sources_agree(
    temporal_env: WorkflowEnvironment, http: httpx.AsyncClient, user: User, lora_id: str
) -> None:
    """The finished workflow's own record (its query still answers) and the database's, which
    /status serves once the workflow has ended, say the same thing."""
    handle = temporal_env.client.get_workflow_handle(train_workflow_id(lora_id))
    # The database records the outcome a moment before the workflow takes it in (seen to be
    # seconds on a loaded machine): compare once the workflow has ended.
    await handle.result()
    workflow_view = await handle.query("progress", result_type=TrainingProgress)
    from_database = (await http.get(f"/api/v1/lora-models/{lora_id}/status", headers=user.headers)).json()
    assert from_database["source"] == "database"
    assert (workflow_view.status, workflow_view.progress, workflow_view.error) == (
        from_database["training_status"],
        from_database["progress"],
        from_database["error_message"],
    )


def _files(*images: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (name, data, "application/octet-stream")) for name, data in images]


def _good(n: int) -> list[tuple[str, bytes]]:
    return [(f"char{i}.png", character_png(i)) for i in range(n)]


async def _names(http: httpx.AsyncClient, user: User, name: str) -> int:
    r = await http.get("/api/v1/lora-models", params={"search": name}, headers=user.headers)
    return r.json()["pagination"]["total"]


async def _wait_status(
    http: httpx.AsyncClient,
    user: User,
    lora_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 420,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = (await http.get(f"/api/v1/lora-models/{lora_id}/status", headers=user.headers)).json()
        seen.append(body)
        if done(body):
            return body, seen
        await asyncio.sleep(0.5)
    raise AssertionError(f"status never matched; last: {seen[-1]}")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (("notes.png", b"these are my notes"), "notes.png: not an image"),
        (("tiny.png", character_png(0)[:300]), "tiny.png: the image is damaged or truncated"),
        (("bomb.png", None), "bomb.png: 8000x8000 pixels is too many"),
        (("small.png", None), "small.png: 100x100 is too small"),
    ],
)
async def test_a_bad_image_is_a_400_naming_it_and_nothing_is_created(
    http: httpx.AsyncClient, make_user: Callable[[], User], extra: tuple[str, bytes | None], reason: str
) -> None:
    name, data = extra
    if data is None:
        size = 8000 if name == "bomb.png" else 100
        out = io.BytesIO()
        Image.new("1" if size == 8000 else "RGB", (size, size)).save(out, format="PNG")
        data = out.getvalue()
    user = make_user()
    r = await http.post(
        "/api/v1/lora-models",
        data={"name": f"Bad upload {name}"},
        files=_files(*_good(3), (name, data)),
        headers=user.headers,
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_image" and reason in error["message"]
    assert await _names(http, user, f"Bad upload {name}") == 0


@pytest.mark.parametrize(("count", "reason"), [(2, "too few"), (11, "too many")])
async def test_too_few_or_too_many_images(
    http: httpx.AsyncClient, make_user: Callable[[], User], count: int, reason: str
) -> None:
    user = make_user()
    images = [(f"c{i}.png", character_png(i % 10) + bytes([i])) for i in range(count)]
    r = await http.post(
        "/api/v1/lora-models", data={"name": "Count"}, files=_files(*images), headers=user.headers
    )
    assert r.status_code == 400 and reason in r.json()["error"]["message"]
    assert await _names(http, user, "Count") == 0


async def test_the_specs_field_name_and_a_create_without_images(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    """The spec names the create request's images ``character_images``: they are read, not
    dropped (two images: too few, so nothing is created). No images at all: a pending LoRA, as
    with the JSON body."""
    user = make_user()
    spec_named = [("character_images", (n, d, "image/png")) for n, d in _good(2)]
    r = await http.post("/api/v1/lora-models", data={"name": "Spec"}, files=spec_named, headers=user.headers)
    assert r.status_code == 400 and "2 image(s) is too few" in r.json()["error"]["message"]
    # Both fields are one set: the same drawing in each is a duplicate (and nothing trains).
    both = [*spec_named, *_files(*_good(1))]
    r = await http.post("/api/v1/lora-models", data={"name": "Spec"}, files=both, headers=user.headers)
    assert r.status_code == 400 and "is the same image as" in r.json()["error"]["message"]
    r = await http.post(
        "/api/v1/lora-models", data={"name": "Bare"}, files={"ignored": ("", b"")}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending" and "images" in r.json()["message"]


async def test_images_in_steps_start_training_once_and_then_freeze(
    http: httpx.AsyncClient,
    make_user: Callable[[], User],
    worker: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    owner, stranger = make_user(), make_user()
    r = await http.post("/api/v1/lora-models", json={"name": "Stepwise"}, headers=owner.headers)
    lora_id = r.json()["lora_id"]
    url = f"/api/v1/lora-models/{lora_id}/images"
    assert (await http.post(url, files=_files(*_good(2)), headers=stranger.headers)).status_code == 403
    r = await http.post(url, files=_files(*_good(2)), headers=owner.headers)
    assert r.status_code == 200 and r.json() == {
        "lora_id": lora_id, "images": 2, "training_started": False, "status": "pending",
    }  # fmt: skip
    r = await http.post(url, files=_files(("third.png", character_png(5))), headers=owner.headers)
    assert r.json()["training_started"] is True and r.json()["images"] == 3
    # A retried upload after the start is refused: the dataset is frozen, no second training.
    r = await http.post(url, files=_files(("third.png", character_png(5))), headers=owner.headers)
    assert r.status_code == 409
    detail = (await http.get(f"/api/v1/lora-models/{lora_id}", headers=owner.headers)).json()
    names = [u.split("?")[0].rsplit("/", 1)[1] for u in detail["reference_image_urls"]]
    assert names == ["0.png", "1.png", "2.png"]
    assert f"lora-training-images/{owner.id}/{lora_id}/uploaded/0.png" in detail["reference_image_urls"][0]

    # Cancel it: the owner only; it ends failed with reason "cancelled", its pod gone.
    cancel = f"/api/v1/lora-models/{lora_id}/cancel"
    assert (await http.post(cancel, headers=stranger.headers)).status_code == 403
    await _wait_status(http, owner, lora_id, lambda s: s.get("phase") == "training")
    assert (await http.post(cancel, headers=owner.headers)).status_code == 202
    final, _ = await _wait_status(
        http, owner, lora_id, lambda s: s["training_status"] == "failed", timeout=120
    )
    assert final["error_message"] == "cancelled" and final["source"] == "database"
    await _assert_sources_agree(temporal_env, http, owner, lora_id)
    assert LocalProvider(worker.data_dir, base_model="unused").list_pods() == []
    assert (await http.post(cancel, headers=owner.headers)).status_code == 409


@pytest.mark.records_history
async def test_from_upload_to_a_completed_lora(
    http: httpx.AsyncClient,
    make_user: Callable[[], User],
    worker: Settings,
    temporal_env: WorkflowEnvironment,
    mailbox: Mailbox,
) -> None:
    user = make_user()
    r = await http.post(
        "/api/v1/lora-models",
        data={
            "name": "Red shirt",
            "description": "drawn by the tests",
            "training_params": '{"trigger_word": "zxq"}',
        },
        files=_files(*_good(4)),
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["message"] == "LoRA created; training has started."
    lora_id = r.json()["lora_id"]
    final, seen = await _wait_status(
        http, user, lora_id, lambda s: s["training_status"] in ("completed", "failed")
    )
    assert final["training_status"] == "completed", final
    assert final["progress"] == 100
    await _assert_sources_agree(temporal_env, http, user, lora_id)
    live = [s for s in seen if s["source"] == "workflow"]
    assert live and any(s["phase"] == "training" and s["total_steps"] for s in live)
    assert all(0 <= s["progress"] <= 100 for s in seen)

    detail = (await http.get(f"/api/v1/lora-models/{lora_id}", headers=user.headers)).json()
    assert detail["validation_passed"] is True and len(detail["validation_image_urls"]) == 3
    # Validated on the pod, every checkpoint judged against the base model's image; one kept.
    validation = detail["validation"]
    assert validation["judge"] == "pixel"  # the tiny model's references show no face
    assert [c["name"] for c in validation["checkpoints"]] == ["step-000060", "step-000090", "final"]
    assert validation["chosen"] in [c["name"] for c in validation["checkpoints"] if c["passed"]]
    for prompt in validation["prompts"]:
        assert prompt["control"]["checkpoint"] == "base" and prompt["control"]["image_url"]
        kept = [i for i in prompt["checkpoints"] if i["checkpoint"] == validation["chosen"]]
        assert len(prompt["checkpoints"]) == 3 and len(kept) == 1 and kept[0]["image_url"]
        assert (await http.get(kept[0]["image_url"])).status_code == 200
    assert detail["trigger_word"] == "zxq" and detail["training_params"]["trigger_word"] == "zxq"
    assert detail["file_size"] > 0 and len(detail["sha256"]) == 64
    assert detail["storage_url"].endswith(f"{detail['sha256']}.safetensors")
    # Files are served by the API, never shown as server paths: the LoRA (public) by its URL,
    # a validation image (private) by a signed one that stops working when tampered with.
    assert "file://" not in json.dumps(detail)
    lora_file = await http.get(detail["storage_url"])
    assert lora_file.status_code == 200
    assert hashlib.sha256(lora_file.content).hexdigest() == detail["sha256"]
    signed = detail["validation_image_urls"][0]
    assert (await http.get(signed)).status_code == 200
    assert (await http.get(signed.replace("signature=", "signature=0"))).status_code == 403
    assert (await http.get(signed.split("?")[0])).status_code == 403

    # What the worker did, as the database, the storage and the provider see it.
    storage = LocalStorage(Path(worker.data_dir) / "storage")
    assert storage.stat(detail["storage_path"]).sha256 == detail["sha256"]
    assert detail["storage_path"] == f"lora-models/{lora_id}/{detail['sha256']}.safetensors"
    with psycopg.connect(worker.require_database_url()) as conn:
        job = conn.execute(
            "SELECT runpod_pod_id, training_progress FROM lora_training_jobs WHERE lora_model_id = %s",
            [lora_id],
        ).fetchall()
    assert len(job) == 1 and job[0][0] and job[0][1] == 100
    provider = LocalProvider(Path(worker.data_dir), base_model="unused")
    assert provider.describe(job[0][0]).status == PodStatus.terminated

    # The search attributes change on transitions only (not on every poll): each status once,
    # in order, and the progress in 10 % steps.
    handle = temporal_env.client.get_workflow_handle(train_workflow_id(lora_id))
    upserts = [
        event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for event in (await handle.fetch_history()).events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    statuses = [json.loads(fields["LoraStatus"].data) for fields in upserts if "LoraStatus" in fields]
    steps = [json.loads(fields["LoraProgress"].data) for fields in upserts if "LoraProgress" in fields]
    assert statuses == ["pending", "training", "validating", "completed"]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 100
    assert all(step % 10 == 0 for step in steps)

    # The creator was e-mailed (the session worker's SMTP server, tests/conftest.py): to their
    # address, with the LoRA's link, which the API answers.
    (mail,) = await mailbox.wait_for(user.email)
    assert mail.rcpt_tos == [user.email] and mail.message["From"] == worker.smtp_from
    assert mail.message["Subject"] == 'Your LoRA "Red shirt" is ready'
    link = f"{worker.public_base_url}/api/v1/lora-models/{lora_id}"
    assert link in mail.body and (await http.get(link, headers=user.headers)).json()["id"] == lora_id
    assert mail.message["Message-ID"].strip() == f"<lora-{lora_id}-completed@loraflow.test>"
    await record_history(handle, "train_completed")
