"""The pages at `/` (only when built, never in an API route's place) and the dev stack's sign-in
link (only on the dev stack: 404 everywhere else)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from loraflow.auth import TokenVerifier, dev_identity
from loraflow.settings import DEV_JWT_SECRET, Settings

#: The app is built, never started: nothing here reaches this database.
NO_DATABASE = "postgresql://unused@127.0.0.1:1/unused"


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log('loraflow')")
    return tmp_path


def _client(**settings: Any) -> httpx.AsyncClient:
    app = create_app(Settings(database_url=NO_DATABASE, screening=False, **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://loraflow.test")


@pytest.fixture
async def built(web_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(web_dir=web_dir) as client:
        yield client


async def test_pages_are_served_at_their_paths(built: httpx.AsyncClient) -> None:
    for path in ("/", "/upload", "/library", f"/library/{uuid.uuid4()}", "/admin"):
        r = await built.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "id=root" in r.text
    asset = await built.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and "loraflow" in asset.text


async def test_pages_take_no_api_route_and_stay_out_of_the_openapi_document(
    built: httpx.AsyncClient, tmp_path: Path
) -> None:
    # An unknown path is the API's 404 (its error shape), not the single-page app.
    for path in ("/nope", "/api/v1/nope", "/assets/missing.js", "/upload/extra"):
        r = await built.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found", path
    # An API route still answers as the API (401 without a token), not with a page.
    r = await built.get("/api/v1/lora-models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    async with _client(web_dir=tmp_path / "not-built") as bare:
        assert (await built.get("/openapi.json")).json() == (await bare.get("/openapi.json")).json()
        # Not built: no pages at all.
        assert (await bare.get("/upload")).status_code == 404


async def test_dev_sign_in_is_404_unless_the_dev_stack_turned_it_on(built: httpx.AsyncClient) -> None:
    r = await built.get("/dev/sign-in", params={"user": "demo"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_dev_sign_in_is_404_on_loraflow_api(api_url: str) -> None:
    """`loraflow api` as production runs it (the session's, on the dev secret, but not the dev
    stack) has no sign-in link."""
    r = httpx.get(f"{api_url}/dev/sign-in", params={"user": "demo"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_dev_sign_in_signs_a_browser_in_with_a_token_in_the_fragment(web_dir: Path) -> None:
    async with _client(web_dir=web_dir, dev_sign_in=True) as dev:
        r = await dev.get("/dev/sign-in", params={"user": "demo", "admin": "true", "next": "/admin"})
        assert r.status_code == 303
        assert r.headers["cache-control"] == "no-store"
        location = urlsplit(r.headers["location"])
        assert location.path == "/admin" and not location.query and not location.netloc
        fragment = parse_qs(location.fragment)
        caller = TokenVerifier(secret=DEV_JWT_SECRET, audience="authenticated").verify(
            fragment["access_token"][0]
        )
        assert (caller.user_id, caller.email) == dev_identity("demo")
        assert caller.email == "demo@loraflow.local" and caller.claims["app_metadata"] == {"role": "admin"}

        # Only local paths are redirected to; a bad user name is a 400.
        for elsewhere in ("//evil.example/", "/\t/evil.example/", "/\n/evil.example", "https://evil.example"):
            evil = await dev.get("/dev/sign-in", params={"user": "demo", "next": elsewhere})
            assert evil.headers["location"].startswith("/upload#"), elsewhere
        assert (await dev.get("/dev/sign-in", params={"user": "Not a name!"})).status_code == 400
        assert "/dev/sign-in" not in (await dev.get("/openapi.json")).json()["paths"]


def test_dev_sign_in_refuses_a_real_secret() -> None:
    real = SecretStr("a-real-project-secret-" + "x" * 40)
    with pytest.raises(RuntimeError, match="development JWT secret"):
        create_app(Settings(database_url=NO_DATABASE, screening=False, dev_sign_in=True, jwt_secret=real))
    with pytest.raises(RuntimeError, match="development"):
        Settings(database_url=NO_DATABASE, dev_sign_in=True, jwt_secret=real).refuse_dev_secret()


def test_the_pages_check_images_by_the_servers_limits() -> None:
    """frontend/src/limits.ts refuses what the server would, before any upload."""
    import re

    from loraflow.contracts import limits
    from loraflow.domain import images
    from loraflow.settings import REPO_ROOT

    source = (REPO_ROOT / "frontend" / "src" / "limits.ts").read_text()

    def constant(name: str) -> int:
        match = re.search(rf"export const {name} = ([0-9_ *]+);", source)
        assert match, name
        value = 1
        for factor in match.group(1).replace("_", "").split("*"):
            value *= int(factor)
        return value

    assert constant("MIN_IMAGES") == limits.MIN_IMAGES
    assert constant("MAX_IMAGES") == limits.MAX_IMAGES
    assert constant("MAX_IMAGE_BYTES") == limits.MAX_IMAGE_BYTES == images.MAX_BYTES
    assert constant("MIN_IMAGE_SIDE") == Settings.model_fields["min_image_side"].default
    assert constant("MAX_PIXELS") == images.MAX_PIXELS
    types = dict(re.findall(r'"image/(\w+)": "(\w+)"', source))
    assert set(types.values()) == set(images.FORMATS)
