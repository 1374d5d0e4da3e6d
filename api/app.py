"""The FastAPI application: a thin layer over PostgreSQL and Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from api.body_limit import BodySizeLimit
from api.errors import install_error_handlers
from api.openapi_bodies import document_manual_bodies
from api.routes import admin, budget, events, files, health, lora_models, ratings, reports
from api.web import install_web
from loraflow.auth import TokenVerifier
from loraflow.db import create_pool
from loraflow.db.events import EventHub
from loraflow.ml.screening import ImageScreen
from loraflow.settings import Settings, get_settings
from loraflow.storage import build_storage
from loraflow.temporal.connector import TemporalConnector

DESCRIPTION = """
Durable LoRA training for the video platform: a public library of character LoRAs.

Every request but `/healthz` needs `Authorization: Bearer <JWT>` (a Supabase Auth access
token). Every error has one shape:

```json
{"error": {"status": 409, "code": "duplicate_name", "message": "...", "details": null}}
```

`code` is one of `invalid_request` (400, with per-field `details`), `invalid_image` (400,
naming the file and the reason), `image_refused` (400: automatic screening found explicit
content in the image it names; nothing of the request was kept), `unauthorized` (401),
`forbidden` (403), `not_found` (404), `duplicate_name` (409), `conflict` (409),
`payload_too_large` (413), `unsupported_media_type` (415), `monthly_limit_reached` (429),
`budget_exhausted` (503: the month's training budget is spent), `unavailable` (503) and
`internal_error` (500, a bug).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database_url = settings.require_database_url()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Here as well as in `loraflow api`: `uvicorn --factory api.app:create_app` starts it too.
        settings.refuse_dev_secret()
        app.state.image_limiter = anyio.CapacityLimiter(settings.image_check_threads)
        await app.state.pool.open(wait=False)
        await app.state.events.start()
        try:
            yield
        finally:
            await app.state.events.stop()
            await app.state.pool.close()

    app = FastAPI(
        title="loraflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = create_pool(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    app.state.temporal = TemporalConnector(settings)
    app.state.events = EventHub(database_url)
    app.state.storage = build_storage(settings)
    # Checks at start that NudeNet is installed; its detector loads on the first upload.
    app.state.image_screen = ImageScreen.from_settings(settings)
    app.state.verifier = TokenVerifier(
        secret=settings.jwt_secret.get_secret_value(),
        audience=settings.jwt_audience,
        jwks_url=settings.jwks_url,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.include_router(health.router)
    app.include_router(lora_models.router, prefix="/api/v1")
    app.include_router(ratings.router, prefix="/api/v1")
    app.include_router(reports.router, prefix="/api/v1")
    app.include_router(events.router, prefix="/api/v1")
    app.include_router(budget.router, prefix="/api/v1")
    app.include_router(files.router, prefix="/api/v1")
    app.include_router(admin.router, prefix="/api/v1")
    document_manual_bodies(app)
    # Last: the pages' paths never take an API route's place.
    install_web(app, settings)
    return app
