"""One error shape for every error the API returns.

    {"error": {"status": 409, "code": "duplicate_name", "message": "...", "details": null}}

``code`` is stable and machine-readable; ``message`` is for people; ``details`` lists the
offending fields for validation errors.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from loraflow.logging import get_logger

log = get_logger(__name__)
#: Seconds a client is asked to wait (``Retry-After``) when a dependency is down.
RETRY_AFTER_S = 5


class ErrorDetail(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `body.name` or `query.limit`.")
    message: str = Field(description="What is wrong with it.")


class ErrorBody(BaseModel):
    status: int = Field(description="The HTTP status, repeated for convenience.")
    code: str = Field(description="Stable machine-readable code, e.g. `duplicate_name`.")
    message: str = Field(description="Human-readable explanation the user can act on.")
    details: list[ErrorDetail] | None = Field(default=None, description="Per-field problems.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raise from a route to answer with the standard error shape."""

    def __init__(self, status: int, code: str, message: str, details: list[ErrorDetail] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


#: A validation error lists at most this many problems, each cut to _MAX_TEXT characters: a body
#: with 200,000 unknown keys must not get a 17 MB answer.
MAX_ERROR_DETAILS = 20
_MAX_TEXT = 200


def _details(errors: list[Any], prefix: tuple[Any, ...] = ()) -> list[ErrorDetail]:
    return [
        ErrorDetail(
            field=_field((*prefix, *e.get("loc", ())))[:_MAX_TEXT],
            message=str(e.get("msg", "invalid"))[:_MAX_TEXT],
        )
        for e in errors[:MAX_ERROR_DETAILS]
    ]


def invalid_request(exc: ValidationError, prefix: str) -> ApiError:
    """A 400 for a body the route validated itself: each problem named by its field."""
    details = _details(exc.errors(), (prefix,))
    return ApiError(
        400, "invalid_request", "; ".join(f"{d.field}: {d.message}" for d in details[:3]), details
    )


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(status=status, code=code, message=message, details=details))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting error statuses with the shared shape."""
    return {
        s: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(s, HTTPStatus(s).phrase)}
        for s in statuses
    }


_DESCRIPTIONS = {
    400: "The request is malformed or a field is invalid (`invalid_request`), an image is unusable "
    "(`invalid_image`) or refused by automatic screening (`image_refused`).",
    401: "Missing, expired or invalid bearer token (`unauthorized`).",
    403: "Authenticated, but not allowed to do this (`forbidden`).",
    404: "No such resource (`not_found`).",
    409: "Conflicts with existing state, e.g. a name you already use (`duplicate_name`).",
    429: "Monthly LoRA limit reached (`monthly_limit_reached`).",
    503: "A dependency (database, Temporal) is unavailable (`unavailable`), "
    "or this month's training budget is spent (`budget_exhausted`).",
}


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _details(list(exc.errors()))
        summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3]) or "invalid request"
        return error_response(400, "invalid_request", summary, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        code = (
            HTTPStatus(status).phrase.lower().replace(" ", "_")
            if status in HTTPStatus._value2member_map_
            else "error"
        )
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
        return error_response(status, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL is unreachable (or every pooled connection waits on it): say so at once,
        # with when to try again, instead of a 500 after the pool's wait.
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        return error_response(
            503,
            "unavailable",
            "the database is unavailable; try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, method=request.method)
        return error_response(500, "internal_error", "unexpected server error; it has been logged")
