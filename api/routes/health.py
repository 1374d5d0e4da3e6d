"""/healthz: does the API reach its database and Temporal? Public, so it says ok or not and
nothing more: why a dependency failed (hosts, ports, driver messages) goes to the log."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import PoolDep, TemporalDep
from api.schemas import Health, HealthCheck
from loraflow.logging import get_logger

log = get_logger(__name__)
router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness of the API's dependencies",
    responses={503: {"model": Health, "description": "A dependency does not answer."}},
)
async def healthz(pool: PoolDep, temporal: TemporalDep) -> JSONResponse:
    try:
        async with pool.connection(timeout=3) as conn:
            await conn.execute("SELECT 1")
        database = HealthCheck(ok=True)
    except Exception as exc:  # any failure means "not healthy"; log it, don't raise
        log.warning("healthz_database_down", error=str(exc) or type(exc).__name__)
        database = HealthCheck(ok=False)
    try:
        await temporal.check()
        temporal_check = HealthCheck(ok=True)
    except Exception as exc:
        log.warning("healthz_temporal_down", error=str(exc) or type(exc).__name__)
        temporal_check = HealthCheck(ok=False)
    ok = database.ok and temporal_check.ok
    body = Health(status="ok" if ok else "degraded", database=database, temporal=temporal_check)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
