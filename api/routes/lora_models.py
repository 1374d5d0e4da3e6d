"""/api/v1/lora-models: the public LoRA library."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from temporalio.service import RPCError

from api.deps import CallerDep, EventHubDep, PoolDep, SettingsDep, StorageDep, TemporalDep
from api.errors import ApiError, ErrorDetail, responses
from api.schemas import (
    CreateLoraRequest,
    CreateLoraResponse,
    Creator,
    LoraDetail,
    LoraList,
    LoraStatus,
    LoraSummary,
    Pagination,
    SearchText,
    TrainingStatus,
    UploadResponse,
)
from loraflow.contracts import limits
from loraflow.db import Caller, as_caller, as_service, budget, events, library
from loraflow.db.library import NewLora, Sort
from loraflow.domain import images
from loraflow.domain.images import CheckedImage
from loraflow.errors import (
    BudgetExhausted,
    DatasetRejected,
    DuplicateName,
    ImageRejected,
    LoraNotFound,
    MonthlyLimitReached,
    ObjectExists,
    TemporalUnavailable,
    UploadsClosed,
)
from loraflow.logging import get_logger
from loraflow.settings import Settings
from loraflow.temporal import training_client as trainings

log = get_logger(__name__)
router = APIRouter(prefix="/lora-models", tags=["lora-models"])


def _summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "created_by": Creator(id=row.get("user_id"), email=row.get("created_by_email")),
    }


@router.get(
    "",
    response_model=LoraList,
    summary="List the public LoRA library",
    responses=responses(400, 401),
)
async def list_lora_models(
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
        Sort, Query(description="`recent` (newest first), `popular` (most used), `name` (A-Z).")
    ] = Sort.recent,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")] = 0,
) -> LoraList:
    async with as_caller(pool, caller) as conn:
        rows, total = await library.list_loras(
            conn, status=status_, search=search, sort=sort, limit=limit, offset=offset
        )
    return LoraList(
        items=[LoraSummary.model_validate(_summary_fields(r)) for r in rows],
        pagination=Pagination(total=total, limit=limit, offset=offset),
    )


_IMAGE_FORM = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "description": f"{limits.MIN_IMAGES}-{limits.MAX_IMAGES} character images: JPEG, PNG or WebP, "
    f"at most {images.MAX_BYTES // 2**20} MiB and {images.MAX_PIXELS // 10**6} MP each, shorter side "
    "at least LORAFLOW_MIN_IMAGE_SIDE (256) px.",
}
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateLoraRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "description": "As in the JSON body."},
                        "description": {"type": "string"},
                        "training_params": {"type": "string", "description": "TrainingParams as JSON text."},
                        "images": _IMAGE_FORM,
                    },
                }
            },
        },
    }
}
_IMAGES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["images"], "properties": {"images": _IMAGE_FORM}}
            }
        },
    }
}


def _invalid(exc: ValidationError, prefix: str) -> ApiError:
    details = [
        ErrorDetail(field=".".join([prefix, *(str(p) for p in e["loc"])]), message=e["msg"])
        for e in exc.errors()
    ]
    return ApiError(
        400, "invalid_request", "; ".join(f"{d.field}: {d.message}" for d in details[:3]), details
    )


async def _read_images(form: Any, settings: Settings, already: int = 0) -> list[tuple[CheckedImage, bytes]]:
    """Every uploaded file checked before anything is created: a 400 names the bad one."""
    files = [f for f in form.getlist("images") if isinstance(f, UploadFile)]
    if len(form.getlist("images")) != len(files):
        raise ApiError(400, "invalid_request", "`images` must be files")
    checked = []
    for upload in files:
        data = await upload.read(images.MAX_BYTES + 1)
        try:
            checked.append(
                (
                    images.inspect_image(upload.filename or "image", data, min_side=settings.min_image_side),
                    data,
                )
            )
        except ImageRejected as exc:
            raise ApiError(400, "invalid_image", str(exc)) from exc
    try:
        images.check_dataset([c for c, _ in checked], already=already)
    except DatasetRejected as exc:
        raise ApiError(400, "invalid_image", str(exc)) from exc
    return checked


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _form(request: Request) -> Any:
    try:
        return await request.form(
            max_files=limits.MAX_IMAGES + 1, max_fields=20, max_part_size=images.MAX_BYTES + 1
        )
    except (MultiPartException, ValueError) as exc:
        raise ApiError(400, "invalid_request", f"malformed multipart body: {exc}") from exc


async def _check_budget(pool: Any, settings: Settings) -> None:
    async with as_service(pool) as conn:
        try:
            await budget.check_can_train(conn, settings)
        except BudgetExhausted as exc:
            raise ApiError(503, "budget_exhausted", str(exc)) from exc


async def _temporal_call(pool: Any, lora_id: str, call: Any) -> Any:
    """Run ``call(client)``; if Temporal cannot take it, fail the LoRA (which frees its name and
    does not count toward the limit) and answer 503: nothing may stay pending with no workflow
    behind it."""
    try:
        return await call()
    except (TemporalUnavailable, RPCError) as exc:
        await trainings.mark_failed(pool, lora_id, "training could not be started; please try again")
        raise ApiError(503, "unavailable", f"training could not be started: {exc}") from exc


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreateLoraResponse,
    summary="Create a LoRA; with 3-10 images (multipart) its training starts",
    responses=responses(400, 401, 409, 413, 415, 429, 503),
    openapi_extra=_CREATE_BODY,
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
    content_type = _media_type(request)
    uploads: list[tuple[CheckedImage, bytes]] = []
    if content_type == "multipart/form-data":
        form = await _form(request)
        fields = {k: form.get(k) for k in ("name", "description") if isinstance(form.get(k), str)}
        raw_params = form.get("training_params")
        try:
            if isinstance(raw_params, str) and raw_params.strip():
                fields["training_params"] = json.loads(raw_params)
            body = CreateLoraRequest.model_validate(fields)
        except json.JSONDecodeError as exc:
            raise ApiError(400, "invalid_request", f"body.training_params: not JSON ({exc.msg})") from exc
        except ValidationError as exc:
            raise _invalid(exc, "body") from exc
        uploads = await _read_images(form, settings)
        if len(uploads) < limits.MIN_IMAGES:
            raise ApiError(
                400,
                "invalid_image",
                f"{len(uploads)} image(s) is too few; a LoRA needs at least {limits.MIN_IMAGES}",
            )
    elif content_type in ("application/json", ""):
        try:
            body = CreateLoraRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _invalid(exc, "body") from exc
    else:
        raise ApiError(
            415, "unsupported_media_type", "send application/json, or multipart/form-data with images"
        )

    params = trainings.resolve_params(settings, body.training_params)
    await _check_budget(pool, settings)
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.create_lora(
                conn,
                caller,
                NewLora(
                    name=body.name, description=body.description, trigger_word=params.get("trigger_word")
                ),
            )
    except DuplicateName as exc:
        raise ApiError(409, "duplicate_name", str(exc)) from exc
    except MonthlyLimitReached as exc:
        raise ApiError(429, "monthly_limit_reached", str(exc)) from exc
    lora_id = str(row["id"])
    log.info("lora_created", lora_id=lora_id, user_id=caller.user_id, images=len(uploads))
    response.headers["Location"] = f"/api/v1/lora-models/{lora_id}"
    message = (
        "LoRA created; upload 3-10 character images to POST /api/v1/lora-models/{id}/images to train it."
    )
    keys: list[str] = []
    if uploads:
        keys = trainings.store_uploads(storage, caller.user_id, lora_id, uploads, 0)
        keys = await trainings.record_uploads(pool, lora_id, keys, [storage.url(k) for k in keys])
        message = "LoRA created; training has started."

    async def start() -> bool:
        return await trainings.start_training(
            await temporal.client(), pool, settings,
            lora_id=lora_id, user_id=caller.user_id, image_keys=keys, params=params,
        )  # fmt: skip

    await _temporal_call(pool, lora_id, start)
    return CreateLoraResponse(lora_id=row["id"], status=row["training_status"], message=message)


async def _own_lora(pool: Any, caller: Caller, lora_id: uuid.UUID) -> dict[str, Any]:
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.get_lora(conn, lora_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    if str(row["user_id"]) != caller.user_id:
        raise ApiError(403, "forbidden", "only the LoRA's creator can do this")
    return row


@router.post(
    "/{lora_id}/images",
    response_model=UploadResponse,
    summary="Add character images to a pending LoRA; with 3 or more its training starts",
    responses=responses(400, 401, 403, 404, 409, 413, 415, 503),
    openapi_extra=_IMAGES_BODY,
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
    if row["training_status"] != "pending" or (row["training_params"] or {}).get("started"):
        raise ApiError(
            409, "conflict", f"the LoRA is {row['training_status']}; images can only be added while pending"
        )
    if _media_type(request) != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with `images` files")
    form = await _form(request)
    existing = list((row["training_params"] or {}).get("image_keys", []))
    uploads = await _read_images(form, settings, already=len(existing))
    if not uploads:
        raise ApiError(400, "invalid_image", "no images in the request")
    try:
        keys = trainings.store_uploads(storage, caller.user_id, str(lora_id), uploads, len(existing))
        keys = await trainings.record_uploads(pool, str(lora_id), keys, [storage.url(k) for k in keys])
    except (UploadsClosed, ObjectExists) as exc:
        raise ApiError(409, "conflict", "another upload started this LoRA's training first") from exc
    started = len(keys) >= limits.MIN_IMAGES and row.get("triggered_by_job_id") is None
    if started:
        await _check_budget(pool, settings)
    if row.get("triggered_by_job_id") is None:
        # A job's LoRA is started by its job, with the uploads and the generated references.
        params = {
            k: v for k, v in (row["training_params"] or {}).items() if k not in ("image_keys", "started")
        }
        params = params or trainings.resolve_params(settings, None)

        async def send() -> None:
            await trainings.send_images(
                await temporal.client(), settings,
                lora_id=str(lora_id), user_id=caller.user_id, image_keys=keys, params=params,
            )  # fmt: skip

        await _temporal_call(pool, str(lora_id), send)
    return UploadResponse(lora_id=lora_id, images=len(keys), training_started=started, status="pending")


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
    if row["training_status"] in ("completed", "failed"):
        raise ApiError(409, "conflict", f"the LoRA is already {row['training_status']}")
    try:
        client = await temporal.client()
    except TemporalUnavailable as exc:
        raise ApiError(503, "unavailable", str(exc)) from exc
    if not await trainings.cancel_training(client, str(lora_id)):
        await trainings.mark_failed(pool, str(lora_id), "cancelled")
    return await get_lora_status(lora_id, caller, pool, temporal)


@router.get(
    "/{lora_id}",
    response_model=LoraDetail,
    summary="Get one LoRA",
    responses=responses(400, 401, 404),
)
async def get_lora_model(lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep) -> LoraDetail:
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.get_lora(conn, lora_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return LoraDetail.model_validate(_summary_fields(row))


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
    if row["training_status"] in ("training", "validating", "pending"):
        live = None
        with contextlib.suppress(TemporalUnavailable):  # then the database's record answers
            live = await trainings.live_progress(await temporal.client(), str(lora_id))
        if live is not None and live.status != "pending":
            return LoraStatus(
                id=lora_id,
                training_status=live.status,  # type: ignore[arg-type]
                phase=live.phase,
                step=live.step,
                total_steps=live.total_steps,
                loss=live.loss,
                progress=live.progress,
                estimated_remaining=None if live.eta_s is None else round(live.eta_s),
                error_message=live.error,
                source="workflow",
            )
    progress = 100 if row["training_status"] == "completed" else int(row["training_progress"] or 0)
    return LoraStatus(
        id=row["id"],
        training_status=row["training_status"],
        progress=progress,
        estimated_remaining=row["estimated_remaining"],
        error_message=row["error_message"],
        source="database",
    )


async def _existing_lora(lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep) -> uuid.UUID:
    """A 404 before the stream starts (once it has, the status line is sent)."""
    try:
        async with as_caller(pool, caller) as conn:
            await library.get_training_status(conn, lora_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return lora_id


def _last_event_id(
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this event (EventSource sends it)."),
    ] = None,
) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    if not last_event_id.strip().isdigit() or len(last_event_id.strip()) > 18:
        raise ApiError(400, "invalid_request", "Last-Event-ID must be an event id sent by this stream")
    return int(last_event_id)


def _sse(event: events.LoraEvent) -> ServerSentEvent:
    return ServerSentEvent(id=str(event.id), event=event.event, data=event.data)


@router.get(
    "/{lora_id}/events",
    response_class=EventSourceResponse,
    summary="Live events (server-sent): status, progress, and the outcome, which ends the stream",
    responses=responses(400, 401, 404),
)
async def stream_lora_events(
    lora_id: Annotated[uuid.UUID, Depends(_existing_lora)],
    caller: CallerDep,
    pool: PoolDep,
    hub: EventHubDep,
    after: Annotated[int | None, Depends(_last_event_id)],
) -> AsyncIterator[ServerSentEvent]:
    """Events are pushed (PostgreSQL NOTIFY), never polled. Without `Last-Event-ID` the stream
    opens with the LoRA's latest status, progress and outcome; with it, with everything after
    that event. `event: outcome` (completed or failed) is the last event."""
    key = str(lora_id)
    last = after or 0
    with hub.subscribe(key) as queue:
        catch_up = True
        while True:
            if catch_up:
                async with as_caller(pool, caller) as conn:
                    stored = await events.events_since(conn, key, after if last == 0 else last)
                pending: list[events.LoraEvent] = stored
                catch_up = False
            else:
                item = await queue.get()
                if isinstance(item, events.Gap):
                    catch_up = True
                    continue
                pending = [item]
            for event in pending:
                if event.id <= last:
                    continue
                last = event.id
                yield _sse(event)
                if event.event == events.TERMINAL:
                    return
