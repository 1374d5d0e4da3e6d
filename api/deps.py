"""Request dependencies: settings, the database pool, Temporal, and the verified caller.

Each is ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, and that hop
per dependency was the largest part of a list request's time in the API (profiled: about half)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from api.errors import ApiError
from loraflow.auth import TokenVerifier
from loraflow.db import Caller
from loraflow.db.events import EventHub
from loraflow.errors import AuthError
from loraflow.ml.screening import ImageScreen
from loraflow.settings import Settings
from loraflow.storage import Storage
from loraflow.temporal.connector import TemporalConnector

_bearer = HTTPBearer(
    auto_error=False,
    description="A Supabase Auth access token (JWT). Locally: `loraflow token --user UUID`.",
)


async def app_settings(request: Request) -> Settings:
    """The settings the app was built with (``loraflow.settings.get_settings()`` read them once)."""
    return request.app.state.settings


async def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_temporal(request: Request) -> TemporalConnector:
    return request.app.state.temporal


async def get_storage(request: Request) -> Storage:
    return request.app.state.storage


async def get_event_hub(request: Request) -> EventHub:
    return request.app.state.events


def image_limiter(request: Request) -> anyio.CapacityLimiter:
    """How many uploaded images this process decodes at once (``Settings.image_check_threads``)."""
    return request.app.state.image_limiter


def image_screen(request: Request) -> ImageScreen | None:
    """Automatic screening of uploaded images (``LORAFLOW_SCREENING``); None when it is off."""
    return request.app.state.image_screen


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <JWT>'")
    verifier: TokenVerifier = request.app.state.verifier
    try:
        if verifier.may_fetch_keys(credentials.credentials):  # JWKS over HTTP: not on the loop
            return await anyio.to_thread.run_sync(verifier.verify, credentials.credentials)
        return verifier.verify(credentials.credentials)
    except AuthError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc


async def current_user(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """A signed-in user. A ``service_role`` token is the platform's own key, not a user: the
    user routes refuse it (403) rather than act as nobody in particular."""
    if caller.role != "authenticated":
        raise ApiError(403, "forbidden", f"a {caller.role!r} token cannot act as a user here; sign in as one")
    return caller


def is_admin(caller: Caller) -> bool:
    """Supabase's convention: ``app_metadata`` is set by the service, never by the user, and
    ``app_metadata.role == "admin"`` makes an admin (the database's ``loraflow_is_admin()``)."""
    app_metadata = caller.claims.get("app_metadata")
    return isinstance(app_metadata, dict) and app_metadata.get("role") == "admin"


async def current_admin(caller: Annotated[Caller, Depends(current_user)]) -> Caller:
    if not is_admin(caller):
        raise ApiError(403, "forbidden", "only an admin can do this")
    return caller


SettingsDep = Annotated[Settings, Depends(app_settings)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
TemporalDep = Annotated[TemporalConnector, Depends(get_temporal)]
StorageDep = Annotated[Storage, Depends(get_storage)]
#: The signed-in user (every route but the service's).
CallerDep = Annotated[Caller, Depends(current_user)]
#: A signed-in admin (the review routes).
AdminDep = Annotated[Caller, Depends(current_admin)]
#: Any verified token, ``service_role`` included (the budget route).
AnyCallerDep = Annotated[Caller, Depends(current_caller)]
EventHubDep = Annotated[EventHub, Depends(get_event_hub)]
