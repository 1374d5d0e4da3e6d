"""Reaching the database the way a Supabase client does: PostgREST sets the role (``anon`` without
a login, ``authenticated`` with one) and ``request.jwt.claims`` for the transaction, then runs the
client's SQL. Attacks in tests/security/ come through this door."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

__all__ = ["SUPABASE_DEFAULT_PRIVILEGES", "as_anon", "as_user", "user_claims"]

#: What a Supabase project grants before any migration runs: the API roles exist, and every table,
#: sequence and function the migrating role creates in ``public`` is granted to ``anon`` and
#: ``authenticated`` in full unless a migration revokes it (Supabase's default privileges for
#: ``postgres``). The suite's database starts this way, so a migration that forgets a REVOKE
#: fails the tests here as it would leave a door open there.
SUPABASE_DEFAULT_PRIVILEGES = """
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


def user_claims(user_id: str | None = None) -> dict[str, Any]:
    uid = user_id or str(uuid.uuid4())
    return {"sub": uid, "role": "authenticated", "email": f"{uid[:8]}@example.com"}


@asynccontextmanager
async def _as(
    pool: AsyncConnectionPool, role: str, claims: dict[str, Any]
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            [role, json.dumps(claims)],
        )
        yield conn


def as_anon(pool: AsyncConnectionPool) -> Any:
    """A transaction as ``anon`` (no login)."""
    return _as(pool, "anon", {"role": "anon"})


def as_user(pool: AsyncConnectionPool, claims: dict[str, Any]) -> Any:
    """A transaction as ``authenticated`` with these JWT claims."""
    return _as(pool, "authenticated", claims)
