"""Making a LoRA the way the API does (a row created as its user) and putting its images where
the upload route puts them, for tests that start a training directly."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from loraflow.contracts.lora_training import TrainingOutcome
from loraflow.contracts.names import uploaded_image_key
from loraflow.db import Caller, as_caller, library
from loraflow.devstack.demo import draw_character
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from training_scripts.tiny_model import TINY_TRAINING_PARAMS

__all__ = [
    "QUICK_TRAINING_PARAMS",
    "assert_every_phase_ran",
    "character_png",
    "mark_completed",
    "new_lora",
    "upload_images",
]

#: Enough steps for every phase of a real training (pod, agent, trainer, download, storage,
#: validation) to run, not for a LoRA that passes validation: for tests about the machinery
#: around the training. The path to a LoRA that passes is tests/api/test_training.py's.
QUICK_TRAINING_PARAMS: dict[str, Any] = {**TINY_TRAINING_PARAMS, "steps": 40}


def assert_every_phase_ran(outcome: TrainingOutcome) -> None:
    """The training reached its verdict: every validation prompt judged on the machine, and the
    verdict (the tiny model's business after a quick training) whichever it was: a stored file,
    or none with validation's reason."""
    assert outcome.validation is not None and len(outcome.validation.prompts) == 3, outcome
    if outcome.status == "completed":
        assert outcome.stored is not None and len(outcome.scores) == 3, outcome
    else:
        assert outcome.stored is None and (outcome.error or "").startswith("validation failed"), outcome


def character_png(i: int) -> bytes:
    """The i-th drawing of the demo character (a PNG)."""
    return draw_character(i)


async def new_lora(pool: AsyncConnectionPool) -> tuple[str, str]:
    """A new user and their pending LoRA: ``(user_id, lora_id)``."""
    uid = str(uuid.uuid4())
    caller = Caller(uid, f"{uid[:8]}@example.com", "authenticated", {"sub": uid, "role": "authenticated"})
    async with as_caller(pool, caller) as conn:
        row = await library.create_lora(conn, caller, library.NewLora(name="Red shirt"))
    return uid, str(row["id"])


def upload_images(settings: Settings, user_id: str, lora_id: str, n: int = 4) -> list[str]:
    """``n`` character images stored under the LoRA's upload keys; the keys."""
    storage = LocalStorage(Path(settings.data_dir) / "storage")
    keys = [uploaded_image_key(user_id, lora_id, i, "png") for i in range(n)]
    for i, key in enumerate(keys):
        storage.put(key, [character_png(i)])
    return keys


async def mark_completed(pool: AsyncConnectionPool, lora_id: str, name: str | None = None) -> None:
    """Record ``lora_id`` as completed with a (made-up) file, as the worker would, without a
    training: for tests of what a completed LoRA allows (ratings, reports)."""
    from loraflow.db import as_service

    async with as_service(pool) as conn:
        await conn.execute(
            """UPDATE lora_models SET training_status = 'completed', name = coalesce(%s, name),
                      storage_path = 'lora-models/' || id || '/x.safetensors',
                      storage_url = 'https://storage.example/' || id, file_size = 1
                WHERE id = %s""",
            [name, lora_id],
        )
