"""Reports and hiding through the door a Supabase client uses (SQL as ``authenticated`` with JWT
claims): a report is filed only in one's own name and seen only by its author, nobody resolves
one or unhides a LoRA, and a hidden LoRA is visible to its creator alone."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from loraflow.db import as_service
from tests.helpers.loras import new_lora
from tests.helpers.sql_roles import as_user, user_claims


async def _report(pool: AsyncConnectionPool, claims: dict, lora_id: str, user_id: str) -> None:
    async with as_user(pool, claims) as conn:
        await conn.execute("SELECT loraflow_ensure_user()")
        await conn.execute(
            "INSERT INTO lora_reports (lora_model_id, user_id, reason) VALUES (%s, %s, 'spam')",
            [lora_id, user_id],
        )


async def test_reports_are_filed_in_ones_own_name_and_seen_by_their_author_only(
    pool: AsyncConnectionPool,
) -> None:
    _, lora_id = await new_lora(pool)
    alice, bob = user_claims(), user_claims()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        await _report(pool, alice, lora_id, bob["sub"])
    await _report(pool, alice, lora_id, alice["sub"])
    async with as_user(pool, bob) as conn:
        assert await (await conn.execute("SELECT * FROM lora_reports")).fetchall() == []
    async with as_user(pool, alice) as conn:
        assert len(await (await conn.execute("SELECT * FROM lora_reports")).fetchall()) == 1
    for statement in (
        "UPDATE lora_reports SET status = 'resolved'",
        "DELETE FROM lora_reports",
        f"UPDATE lora_models SET hidden_at = NULL WHERE id = '{lora_id}'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with as_user(pool, alice) as conn:
                await conn.execute(statement)


async def test_a_hidden_lora_is_visible_to_its_creator_alone(pool: AsyncConnectionPool) -> None:
    owner, lora_id = await new_lora(pool)
    async with as_service(pool) as conn:
        await conn.execute(
            "UPDATE lora_models SET hidden_at = now(), hidden_reason = 'review' WHERE id = %s", [lora_id]
        )
        await conn.execute("SELECT lora_emit(%s, 'status', '{\"status\": \"completed\"}')", [lora_id])
    admin = {**user_claims(), "app_metadata": {"role": "admin"}}
    # Every door a client has to a LoRA: the table, the library view (it joins auth.users with
    # its owner's rights, so the table's RLS did not apply through it) and the event stream.
    doors = [
        "SELECT id FROM lora_models WHERE id = %s",
        "SELECT id FROM lora_library WHERE id = %s",
        "SELECT id FROM lora_events WHERE lora_model_id = %s",
    ]
    for claims, sees in ((user_claims(), False), (user_claims(owner), True), (admin, True)):
        for query in doors:
            async with as_user(pool, claims) as conn:
                seen = await (await conn.execute(query, [lora_id])).fetchone()
            assert (seen is not None) == sees, (query, claims["sub"] == owner)
    async with as_user(pool, user_claims()) as conn:  # nor by listing what is hidden
        listed = await conn.execute("SELECT count(*) AS n FROM lora_library WHERE hidden_at IS NOT NULL")
        assert (await listed.fetchone())["n"] == 0
