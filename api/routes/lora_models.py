"""/api/v1/lora-models: the public LoRA library."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from api.deps import CallerDep, PoolDep
from api.errors import ApiError, responses
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
)
from loraflow import library
from loraflow.db import as_caller
from loraflow.library import DuplicateName, LoraNotFound, MonthlyLimitReached, NewLora, Sort
from loraflow.logging import get_logger

log = get_logger(__name__)
router = APIRouter(prefix="/lora-models", tags=["lora-models"])

LoraId = Annotated[uuid.UUID, "LoRA id"]


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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreateLoraResponse,
    summary="Create a LoRA (it starts pending)",
    responses=responses(400, 401, 409, 429),
)
async def create_lora_model(
    body: CreateLoraRequest, caller: CallerDep, pool: PoolDep, response: Response
) -> CreateLoraResponse:
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.create_lora(
                conn, caller, NewLora(name=body.name, description=body.description)
            )
    except DuplicateName as exc:
        raise ApiError(409, "duplicate_name", str(exc)) from exc
    except MonthlyLimitReached as exc:
        raise ApiError(429, "monthly_limit_reached", str(exc)) from exc
    log.info("lora_created", lora_id=str(row["id"]), user_id=caller.user_id)
    response.headers["Location"] = f"/api/v1/lora-models/{row['id']}"
    return CreateLoraResponse(
        lora_id=row["id"],
        status=row["training_status"],
        message="LoRA created; it trains once its character images are provided.",
    )


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
async def get_lora_status(lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep) -> LoraStatus:
    try:
        async with as_caller(pool, caller) as conn:
            row = await library.get_training_status(conn, lora_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    progress = 100 if row["training_status"] == "completed" else int(row["training_progress"] or 0)
    return LoraStatus(
        id=row["id"],
        training_status=row["training_status"],
        progress=progress,
        estimated_remaining=row["estimated_remaining"],
        error_message=row["error_message"],
        source="database",
    )
