"""What the database itself guarantees: RLS, never-delete, the monthly limit, deleted users."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from loraflow.db import Caller, as_caller, library
from loraflow.db.library import NewLora
from loraflow.errors import MonthlyLimitReached


def _caller(user_id: str | None = None) -> Caller:
    uid = user_id or str(uuid.uuid4())
    email = f"{uid[:8]}@example.com"
    return Caller(uid, email, "authenticated", {"sub": uid, "email": email, "role": "authenticated"})


async def _create(pool: AsyncConnectionPool, caller: Caller, name: str = "Hero") -> str:
    async with as_caller(pool, caller) as conn:
        row = await library.create_lora(conn, caller, NewLora(name=name))
    return str(row["id"])


async def test_anyone_reads_every_lora(pool: AsyncConnectionPool) -> None:
    alice, bob = _caller(), _caller()
    lora_id = await _create(pool, alice)
    async with as_caller(pool, bob) as conn:
        row = await library.get_lora(conn, uuid.UUID(lora_id))
    assert row["user_id"] == uuid.UUID(alice.user_id)
    assert row["created_by_email"] == alice.email


async def test_nobody_updates_another_users_lora(pool: AsyncConnectionPool) -> None:
    alice, mallory = _caller(), _caller()
    lora_id = await _create(pool, alice, "Alice's hero")
    async with as_caller(pool, mallory) as conn:
        cur = await conn.execute(
            "UPDATE lora_models SET name = 'stolen', description = 'x' WHERE id = %s", [lora_id]
        )
        assert cur.rowcount == 0
    async with as_caller(pool, alice) as conn:
        row = await library.get_lora(conn, uuid.UUID(lora_id))
        assert row["name"] == "Alice's hero"
        # ...while the owner can edit their own name and description.
        cur = await conn.execute("UPDATE lora_models SET description = 'mine' WHERE id = %s", [lora_id])
        assert cur.rowcount == 1


async def test_users_cannot_set_training_state_or_claim_others(pool: AsyncConnectionPool) -> None:
    alice, bob = _caller(), _caller()
    lora_id = await _create(pool, alice)
    async with as_caller(pool, alice) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(
                "UPDATE lora_models SET training_status = 'completed' WHERE id = %s", [lora_id]
            )
    async with as_caller(pool, bob) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(
                "INSERT INTO lora_models (user_id, name) VALUES (%s, 'impostor')", [alice.user_id]
            )


async def test_loras_are_never_deleted_not_even_by_the_superuser(
    pg_dsn: str, pool: AsyncConnectionPool
) -> None:
    lora_id = await _create(pool, _caller())
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="never deleted"):
            conn.execute("DELETE FROM lora_models WHERE id = %s", [lora_id])
        with pytest.raises(psycopg.Error, match="never deleted"):
            conn.execute("TRUNCATE lora_models CASCADE")
        assert conn.execute("SELECT 1 FROM lora_models WHERE id = %s", [lora_id]).fetchone() == (1,)


async def test_deleting_a_user_keeps_their_loras_in_the_library(
    pg_dsn: str, pool: AsyncConnectionPool
) -> None:
    alice = _caller()
    lora_id = await _create(pool, alice)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM auth.users WHERE id = %s", [alice.user_id])
        row = conn.execute("SELECT user_id, name FROM lora_models WHERE id = %s", [lora_id]).fetchone()
    assert row == (None, "Hero")


async def test_monthly_limit_holds_in_the_database_and_failed_ones_do_not_count(
    pg_dsn: str, pool: AsyncConnectionPool
) -> None:
    alice = _caller()
    ids = [await _create(pool, alice, f"c{i}") for i in range(5)]
    with pytest.raises(MonthlyLimitReached, match="5 LoRAs per month"):
        await _create(pool, alice, "one too many")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE lora_models SET training_status = 'failed' WHERE id = %s", [ids[0]])
        limits_row = conn.execute(
            "SELECT loras_created_this_month FROM user_training_limits WHERE user_id = %s", [alice.user_id]
        ).fetchone()
    assert limits_row == (5,)
    # A failed LoRA frees a slot, and its name.
    await _create(pool, alice, "c0")


async def test_library_counts_follow_inserts_and_status_changes(
    pg_dsn: str, pool: AsyncConnectionPool
) -> None:
    def counts() -> dict[str, int]:
        with psycopg.connect(pg_dsn) as conn:
            return dict(conn.execute("SELECT training_status, n FROM lora_library_counts").fetchall())

    def actual() -> dict[str, int]:
        with psycopg.connect(pg_dsn) as conn:
            # What the public list shows: hidden LoRAs (reported, pending review) are not counted.
            rows = conn.execute(
                "SELECT training_status, count(*) FROM lora_models WHERE hidden_at IS NULL GROUP BY 1"
            ).fetchall()
        return {s: 0 for s in ("pending", "training", "validating", "completed", "failed")} | dict(rows)

    lora_id = await _create(pool, _caller())
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE lora_models SET training_status = 'training' WHERE id = %s", [lora_id])
        conn.execute("UPDATE lora_models SET description = 'no status change' WHERE id = %s", [lora_id])
    assert counts() == actual()
    before = counts()["training"]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE lora_models SET hidden_at = now() WHERE id = %s", [lora_id])
    assert counts() == actual() and counts()["training"] == before - 1
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE lora_models SET hidden_at = NULL, training_status = 'failed' WHERE id = %s", [lora_id]
        )
    assert counts() == actual()
