"""The review's tables and function as a Supabase client reaches them: only an admin (the JWT's
``app_metadata.role``) moderates or reads others' reports, and nobody, the owner included,
rewrites the audit log."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.helpers.loras import new_lora
from tests.helpers.sql_roles import as_anon, as_user, user_claims


def _admin() -> dict[str, object]:
    return {**user_claims(), "app_metadata": {"role": "admin"}}


async def test_only_an_admin_moderates(pool: AsyncConnectionPool) -> None:
    _, lora_id = await new_lora(pool)
    # A user's own user_metadata is theirs to set in Supabase: it must not make an admin.
    pretenders = [
        user_claims(),
        {**user_claims(), "user_metadata": {"role": "admin"}},
        {**user_claims(), "app_metadata": {"role": "moderator"}},
    ]
    for claims in pretenders:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with as_user(pool, claims) as conn:
                await conn.execute("SELECT lora_moderate(%s, 'hide', 'x')", [lora_id])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_anon(pool) as conn:
            await conn.execute("SELECT lora_moderate(%s, 'hide', 'x')", [lora_id])
    async with as_user(pool, _admin()) as conn:
        entry = (
            await (await conn.execute("SELECT lora_moderate(%s, 'hide', 'x') AS entry", [lora_id])).fetchone()
        )["entry"]
    assert entry > 0


async def test_reports_are_the_reporters_and_the_admins(pool: AsyncConnectionPool) -> None:
    _, lora_id = await new_lora(pool)
    reporter = user_claims()
    async with as_user(pool, reporter) as conn:
        await conn.execute("SELECT loraflow_ensure_user()")
        await conn.execute(
            "INSERT INTO lora_reports (lora_model_id, user_id, reason) VALUES (%s, %s, 'spam')",
            [lora_id, reporter["sub"]],
        )
    query = "SELECT count(*) FROM lora_reports WHERE lora_model_id = %s"
    for claims, seen in ((user_claims(), 0), (reporter, 1), (_admin(), 1)):
        async with as_user(pool, claims) as conn:
            assert (await (await conn.execute(query, [lora_id])).fetchone())["count"] == seen


async def test_nobody_rewrites_the_audit_log(pool: AsyncConnectionPool) -> None:
    _, lora_id = await new_lora(pool)
    async with as_user(pool, _admin()) as conn:
        entry = (
            await (
                await conn.execute("SELECT lora_moderate(%s, 'hide', 'first') AS entry", [lora_id])
            ).fetchone()
        )["entry"]
    # Clients: no write at all, admins included.
    for statement in (
        "UPDATE lora_moderation_log SET reason = 'rewritten' WHERE id = %s",
        "DELETE FROM lora_moderation_log WHERE id = %s",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with as_user(pool, _admin()) as conn:
                await conn.execute(statement, [entry])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_user(pool, _admin()) as conn:
            await conn.execute(
                "INSERT INTO lora_moderation_log (lora_model_id, admin_id, action, reason)"
                " VALUES (%s, %s, 'restore', 'x')",
                [lora_id, str(uuid.uuid4())],
            )
    # The owner (the service's own login) is refused by the log's triggers.
    for statement in (
        "UPDATE lora_moderation_log SET reason = 'rewritten' WHERE id = %s",
        "DELETE FROM lora_moderation_log WHERE id = %s",
        "TRUNCATE lora_moderation_log CASCADE",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            async with pool.connection() as conn:
                await conn.execute(statement, [entry] if "%s" in statement else None)
    async with pool.connection() as conn:
        kept = await (
            await conn.execute("SELECT reason FROM lora_moderation_log WHERE id = %s", [entry])
        ).fetchone()
    assert kept == {"reason": "first"}
