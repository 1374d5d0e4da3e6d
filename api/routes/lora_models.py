"""/api/v1/lora-models: the public LoRA library (its live events: ``api.routes.events``)."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response, status
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from temporalio.service import RPCError

from api.deps import (
    CallerDep,
    PoolDep,
    SettingsDep,
    StorageDep,
    TemporalDep,
    image_limiter,
    image_screen,
    is_admin,
)
from api.errors import ApiError, invalid_request, responses
from api.lora_views import lora_detail
from api.multipart import MULTIPART, Upload, create_request, media_type, read_form, read_images
from api.openapi_bodies import ADD_IMAGES_BODY, CREATE_LORA_BODY
from api.schemas import (
    CreateLoraRequest,
    CreateLoraResponse,
    LoraDetail,
    LoraList,
    LoraStatus,
    SearchText,
    UploadResponse,
)
from api.uploads import accept_uploads
from loraflow.contracts import limits
from loraflow.contracts.status import TrainingStatus
from loraflow.db import Caller, as_caller, as_service, budget, datasets, library, ratings
from loraflow.db.library import LibraryFilter, NewLora, Sort
from loraflow.domain.params import resolve_params
from loraflow.errors import (
    BudgetExhausted,
    DuplicateName,
    LoraNotFound,
    MonthlyLimitReached,
    ObjectExists,
    TemporalUnavailable,
    UploadsClosed,
)
from loraflow.logging import get_logger
from loraflow.settings import Settings
from loraflow.temporal import training_client
from loraflow.temporal.connector import TemporalConnector

log = get_logger(__name__)
router = APIRouter(prefix="/lora-models", tags=["lora-models"])
T = TypeVar("T")

TRAINING_SERVICE_DOWN = "the training service is not answering; please try again in a minute"
CREATED_WAITING = (
    "LoRA created; upload 3-10 character images to POST /api/v1/lora-models/{id}/images to train it."
)
CREATED_TRAINING = "LoRA created; training has started."


@router.get(
    "",
    response_model=LoraList,
    summary="List the public LoRA library",
    responses={
        **responses(400, 401),
        304: {"description": "Not modified: the page's ETag matches If-None-Match."},
    },
)
async def list_lora_models(
    request: Request,
    caller: CallerDep,
    pool: PoolDep,
    status_: Annotated[
        TrainingStatus | None, Query(alias="status", description="Only LoRAs in this training status.")
    ] = None,
    search: Annotated[
        SearchText | None,
        Query(description="Case-insensitive substring of the name or description (at most 200)."),
    ] = None,
    sort: Annotated[
        Sort,
        Query(
            description="`recent` (newest first), `popular` (most used), `name` (A-Z), `top_rated` "
            "(highest damped mean rating: 5 prior votes of 3 stars, so one 5-star vote does not top it), "
            "`trending` (most used in the last 30 days)."
        ),
    ] = Sort.recent,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")] = 0,
    creator: Annotated[
        str | None, Query(description="Only this creator's LoRAs: a user id, or `me`.", max_length=36)
    ] = None,
    created_after: Annotated[datetime | None, Query(description="Created after this instant.")] = None,
    created_before: Annotated[datetime | None, Query(description="Created before this instant.")] = None,
    base_model: Annotated[
        str | None,
        Query(
            description="Only this model family, e.g. `sdxl`.", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$"
        ),
    ] = None,
    min_rating: Annotated[
        float | None, Query(ge=1, le=5, description="Mean rating at least this (unrated LoRAs drop out).")
    ] = None,
) -> Response:
    narrow = LibraryFilter(
        creator=_creator(creator, caller),
        created_after=created_after,
        created_before=created_before,
        base_model=base_model,
        min_rating=min_rating,
        viewer=uuid.UUID(caller.user_id),
    )
    async with as_caller(pool, caller) as conn:
        body = await library.list_page_json(
            conn, status=status_, search=search, sort=sort, limit=limit, offset=offset, narrow=narrow,
            viewer=uuid.UUID(caller.user_id),
        )  # fmt: skip
    # PostgreSQL built the body (LoraList's shape, checked by the tests); the page's strong ETag
    # lets a client that has it get a 304 with nothing sent.
    etag = '"' + hashlib.blake2b(body.encode(), digest_size=16).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if _not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names ``etag`` (RFC 9110 13.1.2: a list, compared weakly; `*`
    matches any current page)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


def _creator(creator: str | None, caller: Caller) -> uuid.UUID | None:
    if creator is None:
        return None
    if creator == "me":
        return uuid.UUID(caller.user_id)
    try:
        return uuid.UUID(creator)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "`creator` must be a user id (UUID) or `me`") from exc


# ------------------------------------------------------------------------------------ create


async def _read_create_request(
    request: Request, settings: Settings
) -> tuple[CreateLoraRequest, list[Upload]]:
    """The body, JSON or multipart; with multipart, its images too (none, or at least the
    minimum)."""
    content_type = media_type(request)
    if content_type == MULTIPART:
        form = await read_form(request)
        body = create_request(form)
        uploads = await read_images(form, settings, image_limiter(request), screen=image_screen(request))
        if 0 < len(uploads) < limits.MIN_IMAGES:  # none at all: a pending LoRA, as the JSON create
            raise ApiError(
                400,
                "invalid_image",
                f"{len(uploads)} image(s) is too few; a LoRA needs at least {limits.MIN_IMAGES}",
            )
        return body, uploads
    if content_type in ("application/json", ""):
        try:
            return CreateLoraRequest.model_validate_json(await request.body()), []
        except ValidationError as exc:
            raise invalid_request(exc, "body") from exc
    raise ApiError(415, "unsupported_media_type", "send application/json, or multipart/form-data with images")


async def _check_budget(pool: AsyncConnectionPool, settings: Settings) -> None:
    async with as_service(pool) as conn:
        try:
            await budget.check_can_train(conn, settings)
        except BudgetExhausted as exc:
            raise ApiError(503, "budget_exhausted", str(exc)) from exc


async def _insert_lora(
    pool: AsyncConnectionPool, caller: Caller, body: CreateLoraRequest, params: dict[str, Any]
) -> dict[str, Any]:
    """The pending LoRA, created as the caller (RLS, the monthly limit, unique names), with the
    parameters it will train with, recorded by the service."""
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.create_lora(
                conn,
                caller,
                NewLora(name=body.name, description=body.description),
            )
    except DuplicateName as exc:
        raise ApiError(409, "duplicate_name", str(exc)) from exc
    except MonthlyLimitReached as exc:
        raise ApiError(429, "monthly_limit_reached", str(exc)) from exc
    async with as_service(pool) as conn:
        await library.record_training_params(conn, str(row["id"]), params)
    return row


async def _temporal_call(pool: AsyncConnectionPool, lora_id: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call()``; if Temporal cannot take it, fail the LoRA (which frees its name and
    does not count toward the limit) and answer 503: nothing may stay pending with no workflow
    behind it."""
    try:
        return await call()
    except (TemporalUnavailable, RPCError) as exc:
        async with as_service(pool) as conn:
            await library.mark_failed(conn, lora_id, "training could not be started; please try again")
        # The cause names internal addresses: it goes to the log, the caller gets the outcome.
        log.error("temporal_unavailable", lora_id=lora_id, error=str(exc))
        raise ApiError(503, "unavailable", TRAINING_SERVICE_DOWN) from exc


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreateLoraResponse,
    summary="Create a LoRA; with 3-10 images (multipart) its training starts",
    responses=responses(400, 401, 409, 413, 415, 429, 503),
    openapi_extra=CREATE_LORA_BODY,
)
async def create_lora_model(
    request: Request,
    caller: CallerDep,
    pool: PoolDep,
    settings: SettingsDep,
    storage: StorageDep,
    temporal: TemporalDep,
    response: Response,
) -> CreateLoraResponse:
    body, uploads = await _read_create_request(request, settings)
    params = resolve_params(settings, body.training_params)
    await _check_budget(pool, settings)
    row = await _insert_lora(pool, caller, body, params)
    lora_id = str(row["id"])
    log.info("lora_created", lora_id=lora_id, user_id=caller.user_id, images=len(uploads))
    response.headers["Location"] = f"/api/v1/lora-models/{lora_id}"
    keys: list[str] = []
    if uploads:
        dataset = await accept_uploads(
            pool, storage, user_id=caller.user_id, lora_id=lora_id, uploads=uploads, first_index=0
        )
        keys = dataset.image_keys

    async def start() -> bool:
        return await training_client.start_training(
            await temporal.client(), settings,
            lora_id=lora_id, user_id=caller.user_id, image_keys=keys, params=params,
        )  # fmt: skip

    await _temporal_call(pool, lora_id, start)
    return CreateLoraResponse(
        lora_id=row["id"],
        status=row["training_status"],
        message=CREATED_TRAINING if uploads else CREATED_WAITING,
    )


# -------------------------------------------------------------------------------- add images


async def _own_lora(pool: AsyncConnectionPool, caller: Caller, lora_id: uuid.UUID) -> dict[str, Any]:
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.get_lora(conn, lora_id, caller.user_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    if str(row["user_id"]) != caller.user_id:
        raise ApiError(403, "forbidden", "only the LoRA's creator can do this")
    return row


async def _open_dataset(pool: AsyncConnectionPool, row: dict[str, Any]) -> datasets.Dataset:
    """The LoRA's dataset, if it still takes images (a 409 otherwise)."""
    async with as_service(pool) as conn:
        dataset = await datasets.dataset(conn, str(row["id"]))
    if TrainingStatus(row["training_status"]) is not TrainingStatus.PENDING or dataset.started:
        raise ApiError(
            409, "conflict", f"the LoRA is {row['training_status']}; images can only be added while pending"
        )
    return dataset


@router.post(
    "/{lora_id}/images",
    response_model=UploadResponse,
    summary="Add character images to a pending LoRA; with 3 or more its training starts",
    responses=responses(400, 401, 403, 404, 409, 413, 415, 503),
    openapi_extra=ADD_IMAGES_BODY,
)
async def add_images(
    lora_id: uuid.UUID,
    request: Request,
    caller: CallerDep,
    pool: PoolDep,
    settings: SettingsDep,
    storage: StorageDep,
    temporal: TemporalDep,
) -> UploadResponse:
    row = await _own_lora(pool, caller, lora_id)
    existing = await _open_dataset(pool, row)
    if media_type(request) != MULTIPART:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with `images` files")
    uploads = await read_images(
        await read_form(request), settings, image_limiter(request), already=len(existing.image_keys),
        screen=image_screen(request),
    )  # fmt: skip
    if not uploads:
        raise ApiError(400, "invalid_image", "no images in the request")
    try:
        dataset = await accept_uploads(
            pool, storage, user_id=caller.user_id, lora_id=str(lora_id), uploads=uploads,
            first_index=len(existing.image_keys),
        )  # fmt: skip
    except (UploadsClosed, ObjectExists) as exc:
        raise ApiError(409, "conflict", "another upload started this LoRA's training first") from exc
    if dataset.started:
        await _check_budget(pool, settings)
    if row.get("triggered_by_job_id") is None:
        # A job's LoRA is started by its job, with the uploads and the generated references.
        params = row["training_params"] or resolve_params(settings, None)

        async def send() -> None:
            await training_client.send_images(
                await temporal.client(), settings,
                lora_id=str(lora_id), user_id=caller.user_id, image_keys=dataset.image_keys, params=params,
            )  # fmt: skip

        await _temporal_call(pool, str(lora_id), send)
    return UploadResponse(
        lora_id=lora_id,
        images=len(dataset.image_keys),
        training_started=dataset.started,
        status=TrainingStatus.PENDING,
    )


# ---------------------------------------------------------------------------- cancel and read


@router.post(
    "/{lora_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LoraStatus,
    summary="Cancel a training (creator only); it ends failed with reason `cancelled`",
    responses=responses(400, 401, 403, 404, 409, 503),
)
async def cancel_lora_training(
    lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep, temporal: TemporalDep
) -> LoraStatus:
    row = await _own_lora(pool, caller, lora_id)
    if TrainingStatus(row["training_status"]).finished:
        raise ApiError(409, "conflict", f"the LoRA is already {row['training_status']}")
    try:
        client = await temporal.client()
    except TemporalUnavailable as exc:
        log.error("temporal_unavailable", lora_id=str(lora_id), error=str(exc))
        raise ApiError(503, "unavailable", TRAINING_SERVICE_DOWN) from exc
    if not await training_client.cancel_training(client, str(lora_id)):
        async with as_service(pool) as conn:
            await library.mark_failed(conn, str(lora_id), "cancelled")
    return await get_lora_status(lora_id, caller, pool, temporal)


@router.get(
    "/{lora_id}",
    response_model=LoraDetail,
    summary="Get one LoRA",
    responses=responses(400, 401, 404),
)
async def get_lora_model(
    lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep, storage: StorageDep
) -> LoraDetail:
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.get_lora(conn, lora_id, caller.user_id, admin=is_admin(caller))
            mine = await ratings.my_rating(conn, lora_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return await lora_detail(row, storage, my_rating=mine)


async def _live_status(temporal: TemporalConnector, lora_id: uuid.UUID) -> LoraStatus | None:
    """The running workflow's view, once it is past waiting for images; None without one (or
    without Temporal: then the database's record answers)."""
    live = None
    with contextlib.suppress(TemporalUnavailable):
        live = await training_client.live_progress(await temporal.client(), str(lora_id))
    if live is None or live.status == TrainingStatus.PENDING:
        return None
    return LoraStatus(
        id=lora_id,
        training_status=TrainingStatus(live.status),
        phase=live.phase,
        step=live.step,
        total_steps=live.total_steps,
        loss=live.loss,
        progress=live.progress,
        estimated_remaining=None if live.eta_s is None else round(live.eta_s),
        error_message=live.error,
        source="workflow",
    )


def _recorded_status(row: dict[str, Any]) -> LoraStatus:
    training_status = TrainingStatus(row["training_status"])
    completed = training_status is TrainingStatus.COMPLETED
    return LoraStatus(
        id=row["id"],
        training_status=training_status,
        progress=100 if completed else int(row["training_progress"] or 0),
        estimated_remaining=row["estimated_remaining"],
        error_message=row["error_message"],
        source="database",
    )


@router.get(
    "/{lora_id}/status",
    response_model=LoraStatus,
    summary="Training status, for polling",
    responses=responses(400, 401, 404),
)
async def get_lora_status(
    lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep, temporal: TemporalDep
) -> LoraStatus:
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.get_training_status(conn, lora_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    if not TrainingStatus(row["training_status"]).finished:
        live = await _live_status(temporal, lora_id)
        if live is not None:
            return live
    return _recorded_status(row)
