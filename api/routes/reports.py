"""/api/v1/lora-models/{id}/reports: report a LoRA to the moderators."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.deps import CallerDep, PoolDep
from api.errors import ApiError, responses
from api.schemas import ReportCreated, ReportRequest
from loraflow.db import as_caller, reports
from loraflow.errors import LoraNotFound, ReportRefused

router = APIRouter(prefix="/lora-models", tags=["moderation"])


@router.post(
    "/{lora_id}/reports",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportCreated,
    summary="Report a LoRA (one open report per user per LoRA, 10 an hour)",
    responses=responses(400, 401, 404, 409, 429),
)
async def post_report(
    lora_id: uuid.UUID, body: ReportRequest, caller: CallerDep, pool: PoolDep
) -> ReportCreated:
    try:
        async with as_caller(pool, caller) as conn:
            report_id = await reports.file_report(conn, lora_id, caller.user_id, body.reason, body.note)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except ReportRefused as exc:
        raise ApiError(429 if exc.limit else 409, "report_refused", str(exc)) from exc
    return ReportCreated(id=report_id, status="open")
