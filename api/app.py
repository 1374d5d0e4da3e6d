"""The FastAPI application: a thin layer over PostgreSQL and Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import health, lora_models
from loraflow.auth import TokenVerifier
from loraflow.db import create_pool
from loraflow.settings import Settings, get_settings
from loraflow.temporal import TemporalConnector

DESCRIPTION = """
Durable LoRA training for the video platform: a public library of character LoRAs.

Every request but `/healthz` needs `Authorization: Bearer <JWT>` (a Supabase Auth access
token). Every error has one shape:

```json
{"error": {"status": 409, "code": "duplicate_name", "message": "...", "details": null}}
```

`code` is one of `invalid_request` (400, with per-field `details`), `unauthorized` (401),
`forbidden` (403), `not_found` (404), `duplicate_name` (409), `monthly_limit_reached` (429),
`unavailable` (503) and `internal_error` (500, which is a bug).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (`loraflow dev` sets it for the embedded stack)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.pool.open(wait=False)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="loraflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = create_pool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    app.state.temporal = TemporalConnector(settings)
    app.state.verifier = TokenVerifier(
        secret=settings.jwt_secret.get_secret_value(),
        audience=settings.jwt_audience,
        jwks_url=settings.jwks_url,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(lora_models.router, prefix="/api/v1")
    return app
