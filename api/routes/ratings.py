"""/api/v1/lora-models/{id}/rating: the caller's 1-5 stars for a completed LoRA not their own."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.deps import CallerDep, PoolDep
from api.errors import ApiError, responses
from api.schemas import RatingPublic, RatingRequest, RatingResult
from loraflow.db import as_caller, ratings
from loraflow.errors import LoraNotFound, RatingRefused

router = APIRouter(prefix="/lora-models", tags=["ratings"])


@router.put(
    "/{lora_id}/rating",
    response_model=RatingResult,
    summary="Rate a LoRA (1-5 stars); again to change it",
    responses=responses(400, 401, 403, 404, 409),
)
async def put_rating(
    lora_id: uuid.UUID, body: RatingRequest, caller: CallerDep, pool: PoolDep
) -> RatingResult:
    try:
        async with as_caller(pool, caller) as conn:
            summary = await ratings.rate(conn, lora_id, caller.user_id, body.stars)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except RatingRefused as exc:
        raise ApiError(403 if exc.own else 409, "rating_refused", str(exc)) from exc
    return RatingResult(stars=body.stars, rating=RatingPublic(mean=summary.mean, count=summary.count))


@router.delete(
    "/{lora_id}/rating",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove your rating of a LoRA (no-op without one)",
    responses=responses(400, 401),
)
async def delete_rating(lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep) -> Response:
    async with as_caller(pool, caller) as conn:
        await ratings.remove_rating(conn, lora_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
