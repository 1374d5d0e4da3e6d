"""Ratings (sql/0009_ratings.sql): one per user per LoRA, kept by the database's rules.

Every call runs as the caller (``as_caller``), so Row Level Security decides whose rating a
statement may touch; the triggers refuse a LoRA that is not completed and one's own LoRA, and
keep ``lora_models.rating_count``/``rating_sum`` exact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from loraflow.errors import LoraNotFound, RatingRefused

__all__ = ["RatingSummary", "my_rating", "rate", "remove_rating"]


@dataclass(frozen=True)
class RatingSummary:
    mean: float | None  # the plain mean of the stars; None before the first vote
    count: int

    @classmethod
    def of(cls, rating_sum: int, rating_count: int) -> RatingSummary:
        return cls(round(rating_sum / rating_count, 3) if rating_count else None, rating_count)


async def _check(conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID, user_id: str) -> None:
    """The rules, checked first for a message a user can act on (the triggers enforce them)."""
    row = await (
        await conn.execute("SELECT user_id, training_status FROM lora_models WHERE id = %s", [lora_id])
    ).fetchone()
    if row is None:
        raise LoraNotFound(lora_id)
    if str(row["user_id"]) == user_id:
        raise RatingRefused("you cannot rate your own LoRA", own=True)
    if row["training_status"] != "completed":
        raise RatingRefused(f"only a completed LoRA can be rated; this one is {row['training_status']}")


async def _summary(conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID) -> RatingSummary:
    row = await (
        await conn.execute("SELECT rating_sum, rating_count FROM lora_models WHERE id = %s", [lora_id])
    ).fetchone()
    assert row is not None
    return RatingSummary.of(row["rating_sum"], row["rating_count"])


async def rate(
    conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID, user_id: str, stars: int
) -> RatingSummary:
    """Set the caller's rating (a second call changes it); the LoRA's summary after it."""
    await _check(conn, lora_id, user_id)
    await conn.execute("SELECT loraflow_ensure_user()")  # the rater's auth.users row (Supabase has it)
    try:
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO lora_ratings (lora_model_id, user_id, stars) VALUES (%s, %s, %s)
                   ON CONFLICT (lora_model_id, user_id) DO UPDATE SET stars = EXCLUDED.stars""",
                [lora_id, user_id, stars],
            )
    except psycopg.errors.CheckViolation as exc:  # the status changed since the check
        raise RatingRefused(exc.diag.message_primary or "the rating was refused") from exc
    return await _summary(conn, lora_id)


async def remove_rating(conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID) -> RatingSummary:
    """Remove the caller's rating, if any (RLS: only their own is visible to the DELETE)."""
    await conn.execute(
        "DELETE FROM lora_ratings WHERE lora_model_id = %s AND user_id = auth.uid()", [lora_id]
    )
    return await _summary(conn, lora_id)


async def my_rating(conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID) -> int | None:
    row = await (
        await conn.execute(
            "SELECT stars FROM lora_ratings WHERE lora_model_id = %s AND user_id = auth.uid()", [lora_id]
        )
    ).fetchone()
    return None if row is None else int(row["stars"])
