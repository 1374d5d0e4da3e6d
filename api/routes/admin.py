"""/api/v1/admin: the review of reported and flagged LoRAs (admins only: the JWT's
``app_metadata.role == "admin"``; everyone else gets 403, here and in the database)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, PoolDep, StorageDep
from api.errors import ApiError, responses
from api.lora_views import lora_detail
from api.schemas import ModerationRequest, ModerationResult, ReportPublic, ReviewItem, ReviewQueue
from loraflow.db import as_caller, moderation
from loraflow.db.moderation import Decision
from loraflow.errors import LoraNotFound, ModerationRefused
from loraflow.logging import get_logger

log = get_logger(__name__)
router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/reports",
    response_model=ReviewQueue,
    summary="The review queue: reported or flagged LoRAs, oldest first (admins)",
    responses=responses(400, 401, 403),
)
async def get_review_queue(
    caller: AdminDep,
    pool: PoolDep,
    storage: StorageDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")] = 0,
) -> ReviewQueue:
    async with as_caller(pool, caller) as conn:
        rows = await moderation.review_queue(conn, limit=limit, offset=offset)
    items = [
        ReviewItem(
            since=row["since"],
            lora=await lora_detail(row, storage, my_rating=None),
            reports=[ReportPublic.model_validate(r) for r in row["reports"]],
        )
        for row in rows
    ]
    return ReviewQueue(items=items, limit=limit, offset=offset)


@router.post(
    "/lora-models/{lora_id}/moderation",
    response_model=ModerationResult,
    summary="Hide or restore a LoRA, with a reason (admins; audited, never deletes)",
    responses=responses(400, 401, 403, 404),
)
async def post_moderation(
    lora_id: uuid.UUID, body: ModerationRequest, caller: AdminDep, pool: PoolDep
) -> ModerationResult:
    try:
        async with as_caller(pool, caller) as conn:
            entry = await moderation.moderate(conn, lora_id, body.action, body.reason)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except ModerationRefused as exc:  # the database's own check: claims the API did not see
        raise ApiError(403, "forbidden", str(exc)) from exc
    log.info("lora_moderated", lora_id=str(lora_id), action=body.action.value, admin_id=caller.user_id,
             decision_id=entry)  # fmt: skip
    return ModerationResult(
        decision_id=entry, lora_id=lora_id, action=body.action, hidden=body.action is Decision.hide
    )
