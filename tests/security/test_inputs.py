"""Inputs that cost everyone, through HTTP: forged images, oversized bodies, error floods; and what
an upload leaves in storage (the image alone)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from tests.conftest import User
from tests.helpers.loras import character_png
from tests.security.test_sql_surface import INVISIBLE_NAMES


def _forged_jpeg() -> bytes:
    """2 KB whose header claims 6000x6000: libjpeg would pad the missing rows into a 36 MP image."""
    out = io.BytesIO()
    Image.new("RGB", (6000, 6000), (120, 130, 140)).save(out, format="JPEG", quality=95)
    return out.getvalue()[:2048]


async def test_a_small_file_claiming_a_huge_image_is_refused_as_damaged(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    user = make_user()
    files = [("images", (f"{i}.png", character_png(i), "image/png")) for i in range(3)]
    files.append(("images", ("forged.jpg", _forged_jpeg(), "image/jpeg")))
    r = await http.post("/api/v1/lora-models", data={"name": "forged"}, files=files, headers=user.headers)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("forged.jpg: the image is damaged or truncated")


async def test_what_is_stored_is_the_image_alone(
    http: httpx.AsyncClient, make_user: Callable[[], User], settings: Settings
) -> None:
    """EXIF (GPS and all) and a payload appended after the image do not reach storage; the
    orientation the EXIF asked for is applied to the pixels."""
    user = make_user()
    photo = Image.open(io.BytesIO(character_png(0))).convert("RGB").resize((300, 400))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° on display
    exif[0x010F] = "SecretCam"  # make
    out = io.BytesIO()
    photo.save(out, format="JPEG", exif=exif.tobytes())
    payload = b"<?php system($_GET['c']); ?>" * 10
    created = await http.post("/api/v1/lora-models", json={"name": "exif"}, headers=user.headers)
    lora_id = created.json()["lora_id"]
    # One image: stored, and too few to start a training.
    r = await http.post(
        f"/api/v1/lora-models/{lora_id}/images",
        files=[("images", ("photo.jpg", out.getvalue() + payload, "image/jpeg"))],
        headers=user.headers,
    )
    assert r.status_code == 200 and r.json()["training_started"] is False, r.text
    storage = LocalStorage(Path(settings.data_dir) / "storage")
    key = next(k for k in storage.list(f"lora-training-images/{user.id}/{lora_id}") if k.endswith(".jpg"))
    stored = b"".join(storage.get(key))
    assert payload[:20] not in stored and b"SecretCam" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (400, 300)  # rotated as the EXIF said
        assert not image.getexif()


async def _raw_post(api_url: str, head: dict[str, str], body_parts: list[bytes]) -> bytes:
    """POST over a raw socket, sending ``body_parts`` only as far as the server lets us; the
    status line it answers with."""
    host, port = api_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [
            "POST /api/v1/lora-models HTTP/1.1",
            f"Host: {host}",
            *(f"{k}: {v}" for k, v in head.items()),
        ]
        # The status line is read while the body is sent: a server that answers and closes
        # early resets the connection if we keep sending, and a reset can discard its answer.
        status = asyncio.create_task(reader.readline())
        with contextlib.suppress(ConnectionError):
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            for part in body_parts:
                await asyncio.sleep(0)  # let the reader take an answer that has arrived
                if status.done():
                    break
                writer.write(part)
                await writer.drain()
        return await asyncio.wait_for(status, timeout=10)
    finally:
        writer.close()


async def test_a_body_over_the_limit_is_413_before_it_is_read(
    api_url: str, make_user: Callable[[], User]
) -> None:
    user = make_user()
    auth = user.headers["Authorization"]
    # A declared 200 MB JSON body: answered at once, with none of it sent.
    status = await _raw_post(
        api_url,
        {"Authorization": auth, "Content-Type": "application/json", "Content-Length": "200000000"},
        [],
    )
    assert status.startswith(b"HTTP/1.1 413")
    # No Content-Length (chunked): refused once it streams past the limit.
    chunk = b" " * 10_000
    chunked = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * 100
    status = await _raw_post(
        api_url,
        {"Authorization": auth, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunked,
    )
    assert status.startswith(b"HTTP/1.1 413")


async def test_a_flood_of_validation_errors_gets_a_short_answer(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    user = make_user()
    body = {"name": "x", "training_params": {f"k{i}": i for i in range(3000)}}
    r = await http.post("/api/v1/lora-models", json=body, headers=user.headers)
    assert r.status_code == 400
    details = r.json()["error"]["details"]
    assert 1 <= len(details) <= 20 and len(r.content) < 10_000


@pytest.mark.parametrize("name", INVISIBLE_NAMES.values(), ids=INVISIBLE_NAMES.keys())
async def test_a_name_that_shows_nothing_is_refused_by_the_api(
    http: httpx.AsyncClient, make_user: Callable[..., User], name: str
) -> None:
    r = await http.post("/api/v1/lora-models", json={"name": name}, headers=make_user().headers)
    assert r.status_code == 400, r.text
    assert "visible character" in r.text


def _flat_png(side: int, shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (shade, 120, 200)).save(out, format="PNG", optimize=True)
    return out.getvalue()


async def test_large_images_are_checked_off_the_event_loop(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    """Two 40 MP PNGs of a few KB each cost seconds to decode and re-encode; meanwhile the API
    answers other requests at once (before, one upload of ten froze every request for ~5 s).
    Two images: stored, and too few to start a training."""
    user = make_user()
    created = await http.post("/api/v1/lora-models", json={"name": "large"}, headers=user.headers)
    pngs = [_flat_png(6300, shade) for shade in (10, 20)]
    upload = asyncio.ensure_future(
        http.post(
            f"/api/v1/lora-models/{created.json()['lora_id']}/images",
            files=[("images", (f"{i}.png", png, "image/png")) for i, png in enumerate(pngs)],
            headers=user.headers,
        )
    )
    waits = []
    while not upload.done():
        started = time.perf_counter()
        assert (await http.get("/healthz")).status_code == 200
        waits.append(time.perf_counter() - started)
    r = await upload
    assert r.status_code == 200, r.text
    assert max(waits) < 1.0, sorted(waits)[-5:]  # on the event loop: one wait of ~4.6 s
    assert len(waits) >= 10  # the upload lasted long enough to be probed while it ran
