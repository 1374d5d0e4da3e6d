"""The `loraflow` command's small subcommands, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx

from loraflow.devstack.embedded import child_env


def _loraflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loraflow.cli", *args],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_is_accepted_by_the_api(api_url: str) -> None:
    user = str(uuid.uuid4())
    out = _loraflow("token", "--user", user, "--email", "cli@example.com")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    r = httpx.post(
        f"{api_url}/api/v1/lora-models",
        json={"name": "from the cli"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201
    detail = httpx.get(api_url + r.headers["location"], headers={"Authorization": f"Bearer {token}"})
    assert detail.json()["created_by"] == {"id": user, "email": "cli@example.com"}


def test_token_rejects_a_non_uuid_user() -> None:
    out = _loraflow("token", "--user", "alice")
    assert out.returncode == 2 and "UUID" in out.stderr


def test_migrate_is_idempotent_from_the_command_line(pg_dsn: str) -> None:
    out = _loraflow("migrate", DATABASE_URL=pg_dsn, LORAFLOW_LOG_LEVEL="WARNING")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "applied 0 migration(s)"


def test_migrate_without_a_database_says_so() -> None:
    env = child_env()
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "loraflow.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and "DATABASE_URL" in out.stderr
