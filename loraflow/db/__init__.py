"""PostgreSQL access: the connection pool, migrations, and acting as a caller under RLS."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from loraflow.errors import MigrationError
from loraflow.logging import get_logger

log = get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
#: Any constant will do: it only has to be the same for every process migrating this database.
_MIGRATION_LOCK_KEY = 0x6C6F7261666C6F77  # "loraflow"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(sql_dir: Path) -> list[Migration]:
    migrations = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migrations are named NNNN_snake_case.sql")
        migrations.append(Migration(match.group(1), path.name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {sql_dir}")
    return migrations


def migrate(dsn: str, sql_dir: Path, *, monthly_limit: int | None = None) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names.

    Safe to run concurrently from several processes (an advisory lock serialises them) and
    any number of times (applied versions are recorded in ``loraflow_migrations``).
    """
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_MIGRATION_LOCK_KEY])
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS loraflow_migrations (
                       version TEXT PRIMARY KEY,
                       name TEXT NOT NULL,
                       checksum TEXT NOT NULL,
                       applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            done: dict[str, str] = dict(
                conn.execute("SELECT version, checksum FROM loraflow_migrations").fetchall()
            )
            for migration in load_migrations(sql_dir):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{migration.name} was changed after it was applied; add a new migration instead"
                        )
                    continue
                with conn.transaction():
                    try:
                        conn.execute(migration.sql.encode())
                    except psycopg.Error as exc:
                        raise MigrationError(f"{migration.name}: {exc}") from exc
                    conn.execute(
                        "INSERT INTO loraflow_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        [migration.version, migration.name, migration.checksum],
                    )
                applied_now.append(migration.name)
                log.info("migration_applied", migration=migration.name)
            if monthly_limit is not None:
                conn.execute(
                    "INSERT INTO loraflow_settings (key, value) VALUES ('monthly_limit', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [json.dumps(monthly_limit)],
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATION_LOCK_KEY])
    return applied_now


#: How long a request waits for a pooled connection before it is told the database is
#: unavailable (503): an outage is answered in seconds, not after psycopg's default 30 s.
POOL_WAIT_S = 2.0


class _SteadyReconnect(AttemptWithBackoff):
    """Reconnect every ~0.5 s while the database is away, instead of psycopg_pool's doubling
    backoff: after a 20 s outage its delay had grown so that the API kept answering 503 for
    ~10 s after the database was back."""

    INITIAL_DELAY = 0.5
    DELAY_BACKOFF = 1.0


class _Pool(AsyncConnectionPool):
    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        # The one place psycopg_pool makes its reconnection attempt; every retry reuses it.
        await super()._add_connection(attempt or _SteadyReconnect(timeout=self.reconnect_timeout), growing)


def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 16) -> AsyncConnectionPool:
    """A pool whose connections return rows as dicts. Open it with ``await pool.open()``.

    Each connection is checked as it is taken (a broken one, left by a database restart, is
    replaced rather than handed out), and a request waits at most ``POOL_WAIT_S`` for one."""
    return _Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": True},
        open=False,
        name="loraflow",
        timeout=POOL_WAIT_S,
        check=AsyncConnectionPool.check_connection,
    )


@dataclass(frozen=True)
class Caller:
    """Who a request acts for: the verified JWT's claims."""

    user_id: str
    email: str | None
    role: str
    claims: dict[str, Any]


@asynccontextmanager
async def as_caller(
    pool: AsyncConnectionPool, caller: Caller
) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
    """A transaction that runs as the caller, the way PostgREST does it.

    ``role`` and ``request.jwt.claims`` are set transaction-locally, so Row Level Security
    and ``auth.uid()`` see the caller; nothing leaks to the pooled connection's next user.
    """
    role = "service_role" if caller.role == "service_role" else "authenticated"
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            [role, json.dumps(caller.claims)],
        )
        yield _dict_rows(conn)


@asynccontextmanager
async def as_service(
    pool: AsyncConnectionPool, *, acting_for: Caller | None = None
) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
    """A transaction as the service itself (the worker's writes: status, files, cost).

    ``acting_for``: the service writes on a user's behalf (a video job's LoRA and its job slot,
    in one transaction): ``auth.uid()`` is that user's, the privileges stay the service's."""
    async with pool.connection() as conn, conn.transaction():
        if acting_for is not None:
            await conn.execute(
                "SELECT set_config('request.jwt.claims', %s, true)", [json.dumps(acting_for.claims)]
            )
        yield _dict_rows(conn)


def _dict_rows(conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncConnection[dict[str, Any]]:
    """The pool's connections return dict rows (``create_pool`` sets ``row_factory=dict_row``)."""
    return cast("psycopg.AsyncConnection[dict[str, Any]]", conn)
