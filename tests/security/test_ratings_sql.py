"""Ratings through the door a Supabase client uses (SQL as ``anon``/``authenticated`` with JWT
claims): a user writes only their own rating, never of their own or an unfinished LoRA, and
never the aggregate."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from loraflow.db import as_service
from tests.helpers.loras import mark_completed, new_lora
from tests.helpers.sql_roles import as_anon, as_user, user_claims


async def _completed(pool: AsyncConnectionPool) -> tuple[str, str]:
    owner, lora_id = await new_lora(pool)
    await mark_completed(pool, lora_id)
    return owner, lora_id


async def _rate(pool: AsyncConnectionPool, claims: dict, lora_id: str, user_id: str, stars: int = 4) -> None:
    async with as_user(pool, claims) as conn:
        await conn.execute("SELECT loraflow_ensure_user()")
        await conn.execute(
            "INSERT INTO lora_ratings (lora_model_id, user_id, stars) VALUES (%s, %s, %s)",
            [lora_id, user_id, stars],
        )


async def test_a_user_writes_only_their_own_rating(pool: AsyncConnectionPool) -> None:
    _, lora_id = await _completed(pool)
    alice, bob = user_claims(), user_claims()
    await _rate(pool, alice, lora_id, alice["sub"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        await _rate(pool, alice, lora_id, bob["sub"])  # a vote in someone else's name
    await _rate(pool, bob, lora_id, bob["sub"], stars=2)
    async with as_user(pool, alice) as conn:
        changed = await conn.execute(
            "UPDATE lora_ratings SET stars = 1 WHERE lora_model_id = %s AND user_id = %s",
            [lora_id, bob["sub"]],
        )
        assert changed.rowcount == 0  # Bob's rating is not Alice's to change...
        removed = await conn.execute("DELETE FROM lora_ratings WHERE lora_model_id = %s", [lora_id])
        assert removed.rowcount == 1  # ...nor to delete: only her own went
    async with as_service(pool) as conn:
        row = await (
            await conn.execute("SELECT rating_count, rating_sum FROM lora_models WHERE id = %s", [lora_id])
        ).fetchone()
    assert (row["rating_count"], row["rating_sum"]) == (1, 2)


async def test_no_rating_of_ones_own_or_an_unfinished_lora(pool: AsyncConnectionPool) -> None:
    owner, lora_id = await _completed(pool)
    with pytest.raises(psycopg.errors.CheckViolation, match="its creator"):
        await _rate(pool, user_claims(owner), lora_id, owner)
    _, pending = await new_lora(pool)
    voter = user_claims()
    with pytest.raises(psycopg.errors.CheckViolation, match="only a completed LoRA"):
        await _rate(pool, voter, pending, voter["sub"])


async def test_the_aggregate_and_timestamps_are_not_a_clients_to_write(pool: AsyncConnectionPool) -> None:
    owner, lora_id = await _completed(pool)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_user(pool, user_claims(owner)) as conn:
            await conn.execute(
                "UPDATE lora_models SET rating_sum = 500, rating_count = 100 WHERE id = %s", [lora_id]
            )
    voter = user_claims()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_user(pool, voter) as conn:
            await conn.execute("SELECT loraflow_ensure_user()")
            await conn.execute(
                """INSERT INTO lora_ratings (lora_model_id, user_id, stars, created_at)
                   VALUES (%s, %s, 5, now() - interval '1 year')""",
                [lora_id, voter["sub"]],
            )
    for statement in (
        "SELECT * FROM lora_ratings",
        f"INSERT INTO lora_ratings (lora_model_id, user_id, stars) VALUES ('{lora_id}', '{owner}', 5)",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with as_anon(pool) as conn:
                await conn.execute(statement)
