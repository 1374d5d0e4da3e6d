"""Production never runs on the development JWT secret: with it anyone can mint any user's token,
``service_role`` included. `loraflow api` and `loraflow worker` refuse it unless the dev stack
started them (``LORAFLOW_ALLOW_DEV_SECRET``, which `loraflow dev`/`demo` set)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loraflow.devstack.embedded import child_env


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
