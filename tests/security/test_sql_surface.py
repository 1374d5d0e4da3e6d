"""The database as a Supabase client reaches it (role ``anon``/``authenticated``, JWT claims set):
only the functions and columns meant for clients are reachable."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.helpers.sql_roles import as_anon, as_user, user_claims

CLIENT_ROLES = ("anon", "authenticated")


async def test_every_function_a_client_can_call_says_why(pool: AsyncConnectionPool) -> None:
    """A new function is callable by clients only with a ``client surface:`` comment; the
    privileges PostgreSQL grants PUBLIC by default do not count as a reason."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """SELECT p.oid::regprocedure::text AS fn, r.role, obj_description(p.oid, 'pg_proc') AS why
                     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
                          unnest(%s::text[]) AS r(role)
                    WHERE n.nspname IN ('public', 'auth')
                      AND has_function_privilege(r.role, p.oid, 'EXECUTE')""",
                [list(CLIENT_ROLES)],
            )
        ).fetchall()
    callable_by_clients = {(row["fn"], row["role"]): row["why"] or "" for row in rows}
    unexplained = sorted(k for k, why in callable_by_clients.items() if not why.startswith("client surface:"))
    assert unexplained == []
    # What is left is exactly the surface the product needs.
    assert set(callable_by_clients) == {
        ("auth.uid()", "anon"),
        ("auth.uid()", "authenticated"),
        ("loraflow_ensure_user()", "authenticated"),
        ("loraflow_is_admin()", "authenticated"),
        ("lora_moderate(uuid,text,text)", "authenticated"),
    }


#: Every privilege a client role holds on a table, view or sequence, and so every door a Supabase
#: client has to the data (RLS then picks the rows). The suite's database starts with Supabase's
#: default privileges (everything a migration creates is granted to anon and authenticated), so
#: a table, view or sequence a migration forgets to revoke shows up here.
CLIENT_PRIVILEGES = {
    ("lora_events", "authenticated", "SELECT"),  # RLS: the events of LoRAs the caller can see
    ("lora_library", "authenticated", "SELECT"),  # the view applies the hidden rule itself
    ("lora_library_counts", "authenticated", "SELECT"),
    ("lora_models", "authenticated", "SELECT"),  # RLS: visible LoRAs and one's own
    ("lora_models", "authenticated", "INSERT"),  # (user_id, name, description) only
    ("lora_models", "authenticated", "UPDATE"),  # (name, description) of one's own
    ("lora_moderation_log", "authenticated", "SELECT"),  # RLS: admins
    ("lora_ratings", "authenticated", "SELECT"),
    ("lora_ratings", "authenticated", "INSERT"),  # RLS: as oneself
    ("lora_ratings", "authenticated", "UPDATE"),
    ("lora_ratings", "authenticated", "DELETE"),
    ("lora_reports", "authenticated", "SELECT"),  # RLS: one's own; admins all
    ("lora_reports", "authenticated", "INSERT"),
    ("lora_reports_id_seq", "authenticated", "USAGE"),  # a report's id
    ("lora_training_jobs", "authenticated", "SELECT"),
    ("user_training_limits", "authenticated", "SELECT"),  # RLS: one's own
}


async def test_every_privilege_a_client_holds_on_data_is_listed(pool: AsyncConnectionPool) -> None:
    """Tables, views and sequences in ``public`` and ``auth``, table- or column-level: nothing
    beyond CLIENT_PRIVILEGES (``jobs`` is the video platform's own table; 0001 only stands in
    for it where it is missing)."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """SELECT c.relname AS relation, r.role, p.privilege
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                          unnest(%s::text[]) AS r(role),
                          unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                       'REFERENCES', 'TRIGGER', 'USAGE']) AS p(privilege)
                    WHERE n.nspname IN ('public', 'auth') AND c.relname <> 'jobs'
                      AND CASE
                            WHEN c.relkind = 'S' THEN p.privilege IN ('SELECT', 'UPDATE', 'USAGE')
                                 AND has_sequence_privilege(r.role, c.oid, p.privilege)
                            WHEN c.relkind IN ('r', 'v', 'm', 'p', 'f') THEN CASE
                                 WHEN p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                                   THEN has_any_column_privilege(r.role, c.oid, p.privilege)
                                 WHEN p.privilege = 'USAGE' THEN false
                                 ELSE has_table_privilege(r.role, c.oid, p.privilege) END
                            ELSE false END""",
                [list(CLIENT_ROLES)],
            )
        ).fetchall()
    held = {(row["relation"], row["role"], row["privilege"]) for row in rows}
    assert held - CLIENT_PRIVILEGES == set()  # a door nobody meant to open
    assert CLIENT_PRIVILEGES - held == set()  # the list is what the database says


async def test_clients_cannot_empty_the_event_log_or_touch_the_migrations(
    pool: AsyncConnectionPool,
) -> None:
    """What Supabase's default privileges left open before 0014 (TRUNCATE ignores RLS)."""
    attacks = [
        "TRUNCATE lora_events",
        "TRUNCATE lora_usages",
        "SELECT setval('lora_events_id_seq', 9223372036854775807)",
        "DELETE FROM loraflow_migrations",
        "SELECT * FROM budget_alerts",
    ]
    for attack in attacks:
        for door in (as_anon(pool), as_user(pool, user_claims())):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                async with door as conn:
                    await conn.execute(attack)


async def test_anon_cannot_forge_a_lora_event(pool: AsyncConnectionPool) -> None:
    """lora_emit was SECURITY DEFINER and callable by PUBLIC: anyone could push a forged
    "completed, storage_url=..." into any LoRA's stream, replayed to every later viewer."""
    lora_id = str(uuid.uuid4())
    for door in (as_anon(pool), as_user(pool, user_claims())):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with door as conn:
                await conn.execute(
                    'SELECT lora_emit(%s, \'status\', \'{"status": "completed", "storage_url": "http://evil"}\')',
                    [lora_id],
                )


async def test_users_cannot_read_the_platforms_spend(pool: AsyncConnectionPool) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_user(pool, user_claims()) as conn:
            await conn.execute("SELECT loraflow_month_spend()")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("training_params", '{"steps": 999999, "rank": 4096, "resolution": 8192}'),
        ("reference_image_urls", "{lora-training-images/someone-else/x/uploaded/0.png}"),
        ("base_model", "evil"),
        ("triggered_by_job_id", "080279a7-0f42-4b71-b013-d98a1f60e8c5"),
        ("trigger_word", "x"),
        ("character_description", "x"),
    ],
)
async def test_a_client_insert_chooses_only_name_and_description(
    pool: AsyncConnectionPool, column: str, value: str
) -> None:
    claims = user_claims()
    async with as_user(pool, claims) as conn:
        await conn.execute("SELECT loraflow_ensure_user()")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_user(pool, claims) as conn:
            await conn.execute(
                f"INSERT INTO lora_models (user_id, name, {column}) VALUES (%s, %s, %s)",
                [claims["sub"], f"planted {column}", value],
            )
    # ... while the plain insert a client needs still works.
    async with as_user(pool, claims) as conn:
        await conn.execute(
            "INSERT INTO lora_models (user_id, name, description) VALUES (%s, %s, 'mine')",
            [claims["sub"], f"plain {column}"],
        )


#: Names that show nothing, made of characters the first CHECK (sql/0007) let through.
INVISIBLE_NAMES = {
    "variation-selector": "\ufe0f",
    "variation-selector-supplement": "\U000e0100",
    "tag-characters": "\U000e0041\U000e0042",
    "arabic-letter-mark": "\u061c",
    "mongolian-selector": "\u180b",
    "interlinear-annotation": "\ufff9\ufffb",
    "musical-format": "\U0001d173",
}


@pytest.mark.parametrize(
    "name",
    ["\u200b\u200b", "\u3164", " padded ", "x" * 256, "tab\there", "\u2800", *INVISIBLE_NAMES.values()],
    ids=[
        "zero-width",
        "hangul-filler",
        "untrimmed",
        "too-long",
        "control",
        "braille-blank",
        *INVISIBLE_NAMES,
    ],
)
async def test_names_the_api_refuses_are_refused_by_the_database_too(
    pool: AsyncConnectionPool, name: str
) -> None:
    claims = user_claims()
    async with as_user(pool, claims) as conn:
        await conn.execute("SELECT loraflow_ensure_user()")
    # (a name past 255 characters is already refused by its VARCHAR(255) type)
    with pytest.raises((psycopg.errors.CheckViolation, psycopg.errors.StringDataRightTruncation)):
        async with as_user(pool, claims) as conn:
            await conn.execute(
                "INSERT INTO lora_models (user_id, name) VALUES (%s, %s)", [claims["sub"], name]
            )


async def test_descriptions_are_bounded_in_the_database(pool: AsyncConnectionPool) -> None:
    claims = user_claims()
    async with as_user(pool, claims) as conn:
        await conn.execute("SELECT loraflow_ensure_user()")
    with pytest.raises(psycopg.errors.CheckViolation):
        async with as_user(pool, claims) as conn:
            await conn.execute(
                "INSERT INTO lora_models (user_id, name, description) VALUES (%s, 'long', %s)",
                [claims["sub"], "x" * 2001],
            )
