"""The pages (``frontend/``, built into ``LORAFLOW_WEB_DIR``) at ``/``, and the dev stack's
sign-in link. Neither appears in the OpenAPI document, and neither shadows an API route: the
pages answer only at their own paths, and ``/dev/sign-in`` exists only on the dev stack."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.errors import ApiError
from loraflow.auth import dev_identity, issue_token
from loraflow.settings import Settings

__all__ = ["DEV_SIGN_IN_PATH", "PAGE_PATHS", "install_web"]

#: The single-page app's routes (frontend/src/router.ts): each answers with index.html.
PAGE_PATHS = ("/", "/upload", "/library", "/library/{lora_id}", "/admin")
DEV_SIGN_IN_PATH = "/dev/sign-in"
#: How long a dev sign-in lasts (a working day).
DEV_TOKEN_TTL_S = 12 * 3600


def _install_pages(app: FastAPI, web_dir: Path) -> None:
    index = web_dir / "index.html"

    async def page() -> FileResponse:
        # The pages change with every build; their assets are content-hashed and may be cached.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for path in PAGE_PATHS:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    assets = web_dir / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")


#: Where the sign-in link may send the browser: a path on this site. Browsers drop tabs and
#: newlines from URLs, so "/\t/evil.example" would become "//evil.example" (another site, with
#: the token in its fragment): only plain path characters pass.
_LOCAL_PATH = re.compile(r"/(?!/)[A-Za-z0-9/_.~-]*")


def _install_dev_sign_in(app: FastAPI, settings: Settings) -> None:
    if not settings.uses_dev_secret:
        raise RuntimeError("LORAFLOW_DEV_SIGN_IN runs only on the development JWT secret (`loraflow dev`)")
    secret = settings.jwt_secret.get_secret_value()

    async def dev_sign_in(
        user: Annotated[str, Query(max_length=64, description="A UUID, or a short name such as `demo`.")],
        admin: bool = False,
        next: Annotated[str, Query(max_length=200)] = "/upload",
    ) -> RedirectResponse:
        try:
            user_id, email = dev_identity(user)
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        token = issue_token(
            secret,
            user_id=user_id,
            email=email,
            audience=settings.jwt_audience,
            ttl_seconds=DEV_TOKEN_TTL_S,
            app_metadata={"role": "admin"} if admin else None,
        )
        if not _LOCAL_PATH.fullmatch(next):
            next = "/upload"
        # The token travels in the fragment, as Supabase Auth's implicit-flow redirect does: the
        # browser never sends it to a server, and the page takes it from there.
        fragment = urlencode({"access_token": token, "token_type": "bearer", "expires_in": DEV_TOKEN_TTL_S})
        return RedirectResponse(
            f"{next}#{fragment}",
            status_code=303,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    app.add_api_route(DEV_SIGN_IN_PATH, dev_sign_in, methods=["GET"], include_in_schema=False)


def install_web(app: FastAPI, settings: Settings) -> None:
    """The pages, when they are built; the sign-in link, when the dev stack asked for it."""
    if settings.dev_sign_in:
        _install_dev_sign_in(app, settings)
    if (settings.web_dir / "index.html").is_file():
        _install_pages(app, settings.web_dir)
