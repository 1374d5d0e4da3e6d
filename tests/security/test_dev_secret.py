"""Production never runs on the development JWT secret: with it anyone can mint any user's token,
``service_role`` included. `loraflow api` and `loraflow worker` refuse it unless the dev stack
started them (``LORAFLOW_ALLOW_DEV_SECRET``, which `loraflow dev`/`demo` set)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from loraflow.devstack.embedded import child_env
from loraflow.settings import REPO_ROOT, Settings


@pytest.mark.parametrize("command", ["api", "worker"])
def test_refuses_to_start_on_the_development_secret(command: str) -> None:
    env = child_env(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", TEMPORAL_ADDRESS="127.0.0.1:1")
    env.pop("LORAFLOW_JWT_SECRET", None)
    env.pop("LORAFLOW_ALLOW_DEV_SECRET", None)
    done = subprocess.run(
        [sys.executable, "-m", "loraflow.cli", command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "LORAFLOW_JWT_SECRET is not set" in done.stderr


@pytest.mark.parametrize("secret", ["", "short-secret"])
def test_an_empty_or_short_secret_is_refused(secret: str) -> None:
    """An empty HS256 key verifies a token anyone signs with the empty key."""
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(jwt_secret=secret)


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "uvicorn", "--factory", "api.app:create_app", "--port", "0"],  # the API without the CLI
        ["worker.py"],
    ],
)
def test_refuses_it_however_it_is_started(command: list[str]) -> None:
    env = child_env(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", TEMPORAL_ADDRESS="127.0.0.1:1")
    env.pop("LORAFLOW_JWT_SECRET", None)
    env.pop("LORAFLOW_ALLOW_DEV_SECRET", None)
    done = subprocess.run(
        [sys.executable, *command], env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert done.returncode != 0
    assert "LORAFLOW_JWT_SECRET is not set" in done.stderr
