"""Migrations: ordered, applied once each, recorded, and refusing edited history."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from loraflow.db import load_migrations, migrate
from loraflow.errors import MigrationError
from loraflow.settings import Settings


def test_migrations_run_twice_apply_nothing_the_second_time(pg_dsn: str) -> None:
    # The session fixture already migrated this database once.
    assert migrate(pg_dsn, Settings().sql_dir) == []
    with psycopg.connect(pg_dsn) as conn:
        recorded = [r[0] for r in conn.execute("SELECT name FROM loraflow_migrations ORDER BY version")]
    assert recorded == [m.name for m in load_migrations(Settings().sql_dir)]


def test_fresh_database_gets_every_table(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables")
        }
        column = conn.execute(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'jobs' AND column_name = 'lora_model_id'"
        ).fetchone()
        trgm = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_lora_models_search_trgm'"
        ).fetchone()
    assert {
        "public.lora_models",
        "public.lora_training_jobs",
        "public.user_training_limits",
        "public.job_costs",
        "auth.users",
        "public.jobs",
    } <= tables
    assert column is not None
    assert trgm is not None and "gin_trgm_ops" in trgm[0]


def test_an_edited_applied_migration_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(Settings().sql_dir, sql_dir)
    first = sorted(sql_dir.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(pg_dsn, sql_dir)


def test_a_failing_migration_leaves_nothing_behind(pg_dsn: str, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(Settings().sql_dir, sql_dir)
    (sql_dir / "9999_broken.sql").write_text(
        "CREATE TABLE half_made (id int);\nSELECT * FROM no_such_table;\n"
    )
    with pytest.raises(MigrationError, match=r"9999_broken\.sql"):
        migrate(pg_dsn, sql_dir)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('half_made')").fetchone() == (None,)
        assert conn.execute("SELECT 1 FROM loraflow_migrations WHERE version = '9999'").fetchone() is None
