"""Automatic screening at upload, through HTTP: an image the screen flags refuses the whole
request (400 ``image_refused``, naming the image) before anything is created, stored or started,
on both upload paths; clean images go through.

The refusing API is its own process started with ``LORAFLOW_SCREENING_LABELS=FACE_FEMALE``, and
the flagged image is skimage's astronaut photo (NudeNet finds her face at 0.72): a real detection
by the real detector, without shipping an explicit image (tests/loraflow/test_screening.py says
why). The session's API screens with the default, explicit labels, under which the same photo
passes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from psycopg_pool import AsyncConnectionPool
from skimage import data

from loraflow.devstack import embedded
from loraflow.storage.local import LocalStorage
from tests.conftest import User
from tests.helpers.api_process import start_api
from tests.helpers.loras import character_png


def _astronaut() -> bytes:
    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, format="JPEG", quality=92)
    return out.getvalue()


def _files(*images: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (name, content, "application/octet-stream")) for name, content in images]


@pytest.fixture(scope="module")
def refusing_api(
    pg_dsn: str, temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """An API that blocks FACE_FEMALE: its base URL and its data directory."""
    data_dir = tmp_path_factory.mktemp("screening-api")
    proc, url = start_api(
        pg_dsn,
        temporal_address,
        data_dir / "api.log",
        LORAFLOW_DATA_DIR=str(data_dir),
        LORAFLOW_SCREENING_LABELS="FACE_FEMALE",
    )
    yield url, data_dir
    embedded.stop_process(proc)


async def _rows(pool: AsyncConnectionPool, user: User) -> int:
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT count(*) AS n FROM lora_models WHERE user_id = %s", [user.id])
        ).fetchone()
    assert row is not None
    return int(row["n"])


def _stored(data_dir: Path, user: User) -> list[str]:
    return LocalStorage(data_dir / "storage").list(f"lora-training-images/{user.id}/")


async def test_a_flagged_image_refuses_the_create_and_nothing_is_kept(
    refusing_api: tuple[str, Path], pool: AsyncConnectionPool, make_user: Callable[[], User]
) -> None:
    url, data_dir = refusing_api
    user = make_user()
    images = [
        ("front.png", character_png(0)),
        ("astronaut.jpg", _astronaut()),
        ("side.png", character_png(1)),
    ]
    async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=60) as http:
        r = await http.post(
            "/lora-models", data={"name": "Screened"}, files=_files(*images), headers=user.headers
        )
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "image_refused"
        assert error["message"].startswith(
            "image 2 (astronaut.jpg) was refused by automatic screening (explicit content: FACE_FEMALE 0."
        )
        assert "nothing of this request was stored" in error["message"]
        mine = (await http.get("/lora-models", params={"creator": "me"}, headers=user.headers)).json()
    assert mine["pagination"]["total"] == 0  # no LoRA, so no workflow and no pod
    assert await _rows(pool, user) == 0 and _stored(data_dir, user) == []


async def test_a_flagged_image_refuses_the_upload_to_a_pending_lora(
    refusing_api: tuple[str, Path], make_user: Callable[[], User]
) -> None:
    url, data_dir = refusing_api
    user = make_user()
    async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=60) as http:
        created = await http.post("/lora-models", json={"name": "Pending screened"}, headers=user.headers)
        assert created.status_code == 201, created.text
        lora_id = created.json()["lora_id"]
        r = await http.post(
            f"/lora-models/{lora_id}/images",
            files=_files(("a.png", character_png(2)), ("astronaut.jpg", _astronaut())),
            headers=user.headers,
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "image_refused", r.text
        assert r.json()["error"]["message"].startswith("image 2 (astronaut.jpg) was refused")
        assert _stored(data_dir, user) == []
        # A clean image is taken by the same API (one: the training does not start).
        r = await http.post(
            f"/lora-models/{lora_id}/images", files=_files(("a.png", character_png(2))), headers=user.headers
        )
        assert r.status_code == 200, r.text
        assert r.json()["images"] == 1 and not r.json()["training_started"]
    assert len(_stored(data_dir, user)) == 1


async def test_the_default_screen_takes_the_same_photo(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    """The session's API (the default, explicit labels) accepts the astronaut photo."""
    user = make_user()
    created = await http.post("/api/v1/lora-models", json={"name": "Astronaut"}, headers=user.headers)
    lora_id = created.json()["lora_id"]
    r = await http.post(
        f"/api/v1/lora-models/{lora_id}/images",
        files=_files(("astronaut.jpg", _astronaut())),
        headers=user.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["images"] == 1
