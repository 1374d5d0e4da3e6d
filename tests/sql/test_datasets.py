"""A LoRA's dataset (sql/0006, loraflow.db.datasets): its own table, written by the service only,
closed once, and found for a video job by job, slot and user."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from loraflow.db import Caller, as_caller, as_service, datasets, library
from loraflow.db.library import NewLora
from loraflow.errors import UploadsClosed
from loraflow.settings import Settings


def _caller() -> Caller:
    uid = str(uuid.uuid4())
    return Caller(uid, None, "authenticated", {"sub": uid, "role": "authenticated"})


async def _lora(pool: AsyncConnectionPool, caller: Caller, job_id: str | None = None) -> str:
    # A job's LoRA is made by the service for the user (clients cannot name a job: sql/0007).
    door = as_service(pool, acting_for=caller) if job_id else as_caller(pool, caller)
    async with door as conn:
        row = await library.create_lora(
            conn,
            caller,
            NewLora(
                name=f"ds {uuid.uuid4().hex[:8]}", triggered_by_job_id=uuid.UUID(job_id) if job_id else None
            ),
        )
    return str(row["id"])


def _keys(caller: Caller, lora_id: str, indexes: range) -> list[str]:
    return [f"lora-training-images/{caller.user_id}/{lora_id}/uploaded/{i}.png" for i in indexes]


async def _record(pool: AsyncConnectionPool, lora_id: str, keys: list[str]) -> datasets.Dataset:
    async with as_service(pool) as conn:
        return await datasets.record_uploads(conn, lora_id, keys, [f"file:///{k}" for k in keys])


async def test_uploads_accumulate_in_order_and_close_the_dataset_once(pool: AsyncConnectionPool) -> None:
    alice = _caller()
    lora_id = await _lora(pool, alice)
    async with as_service(pool) as conn:
        assert await datasets.dataset(conn, lora_id) == datasets.Dataset(lora_id)
    first = await _record(pool, lora_id, _keys(alice, lora_id, range(2)))
    assert (first.image_keys, first.started) == (_keys(alice, lora_id, range(2)), False)
    second = await _record(pool, lora_id, _keys(alice, lora_id, range(2, 3)))
    assert second.image_keys == _keys(alice, lora_id, range(3)) and second.started
    with pytest.raises(UploadsClosed):
        await _record(pool, lora_id, _keys(alice, lora_id, range(3, 4)))
    async with as_service(pool) as conn:
        stored = await datasets.dataset(conn, lora_id)
        refs = (await library.get_lora(conn, uuid.UUID(lora_id)))["reference_image_urls"]
    assert stored == second
    assert refs == [f"file:///{k}" for k in _keys(alice, lora_id, range(3))]


async def test_racing_uploads_past_the_minimum_start_it_once(pool: AsyncConnectionPool) -> None:
    alice = _caller()
    lora_id = await _lora(pool, alice)
    results = await asyncio.gather(
        *[_record(pool, lora_id, _keys(alice, lora_id, range(3 * n, 3 * n + 3))) for n in range(4)],
        return_exceptions=True,
    )
    taken = [r for r in results if isinstance(r, datasets.Dataset)]
    assert len(taken) == 1 and taken[0].started and len(taken[0].image_keys) == 3
    assert all(isinstance(r, UploadsClosed) for r in results if r not in taken)


async def test_a_job_lora_stays_open_until_its_job_hands_over_the_dataset(
    pool: AsyncConnectionPool, pg_dsn: str
) -> None:
    alice, mallory = _caller(), _caller()
    job_id = str(uuid.uuid4())
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO jobs (id) VALUES (%s)", [job_id])
    lora_id = await _lora(pool, alice, job_id)
    async with as_service(pool) as conn:
        await datasets.attach_job(conn, lora_id=lora_id, job_id=job_id, slot="char1")
    # Uploads to a job's LoRA never start it: its job does, with the references.
    assert not (await _record(pool, lora_id, _keys(alice, lora_id, range(4)))).started
    # Found by job, slot and user; another user's LoRA "of" the same job is not the job's.
    planted = await _lora(pool, mallory, job_id)
    async with as_service(pool) as conn:
        await datasets.attach_job(conn, lora_id=planted, job_id=job_id, slot="char2")
        found = await datasets.job_lora(conn, job_id=job_id, slot="char1", user_id=alice.user_id)
        assert found is not None and found.lora_id == lora_id
        assert await datasets.job_lora(conn, job_id=job_id, slot="char1", user_id=mallory.user_id) is None
        assert await datasets.job_lora(conn, job_id=job_id, slot="char2", user_id=alice.user_id) is None
        generated = f"lora-training-images/{alice.user_id}/{lora_id}/generated/0.png"
        keys = [*_keys(alice, lora_id, range(2)), generated]
        for _ in range(2):  # a retried activity writes the same
            await datasets.record_job_dataset(
                conn, lora_id=lora_id, image_keys=keys, urls=["u0", "u1", "u2"], character_id="char1"
            )
        stored = await datasets.dataset(conn, lora_id)
        rows = await datasets.job_loras(conn, job_id)
    assert (stored.image_keys, stored.started, stored.job_slot, stored.character_id) == (
        keys, True, "char1", "char1",
    )  # fmt: skip
    assert [(str(r["id"]), r["character_id"]) for r in rows] == [(lora_id, "char1"), (planted, None)]
    with pytest.raises(UploadsClosed):
        await _record(pool, lora_id, _keys(alice, lora_id, range(4, 5)))


async def test_clients_can_neither_read_nor_write_datasets(pool: AsyncConnectionPool) -> None:
    alice = _caller()
    lora_id = await _lora(pool, alice)
    await _record(pool, lora_id, _keys(alice, lora_id, range(1)))
    for statement, args in [
        ("SELECT * FROM lora_datasets WHERE lora_model_id = %s", [lora_id]),
        ("UPDATE lora_datasets SET started_at = now() WHERE lora_model_id = %s", [lora_id]),
        ("INSERT INTO lora_datasets (lora_model_id, job_slot) VALUES (%s, 'primary')", [lora_id]),
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with as_caller(pool, alice) as conn:
                await conn.execute(statement, args)


def test_the_migration_moves_dataset_state_out_of_training_params(pg_dsn: str) -> None:
    """Rows written before sql/0006 kept their dataset in training_params: migrating again over
    such rows (the file is idempotent) leaves only the parameters there."""
    user_id, lora_id, job_id = (str(uuid.uuid4()) for _ in range(3))
    own = [f"lora-training-images/{user_id}/{lora_id}/uploaded/{i}.png" for i in (1, 0)]
    planted = f"lora-training-images/{uuid.uuid4()}/{uuid.uuid4()}/uploaded/0.png"
    params = {"steps": 10, "trigger_word": "ohwx", "image_keys": [*own, planted], "started": True,
              "job_slot": "primary", "character_id": "char1"}  # fmt: skip
    migration = (Settings().sql_dir / "0006_lora_datasets.sql").read_text()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id) VALUES (%s)", [user_id])
        conn.execute("INSERT INTO jobs (id, user_id) VALUES (%s, %s)", [job_id, user_id])
        conn.execute(
            """INSERT INTO lora_models (id, user_id, name, training_params, triggered_by_job_id)
               VALUES (%s, %s, 'before 0006', %s, %s)""",
            [lora_id, user_id, Jsonb(params), job_id],
        )
        with conn.transaction():
            conn.execute(migration.encode())
        stored = conn.execute("SELECT training_params FROM lora_models WHERE id = %s", [lora_id]).fetchone()
        moved = conn.execute(
            """SELECT image_keys, started_at IS NOT NULL, job_slot, character_id
                 FROM lora_datasets WHERE lora_model_id = %s""",
            [lora_id],
        ).fetchone()
    assert stored == ({"steps": 10, "trigger_word": "ohwx"},)
    assert moved == (own, True, "primary", "char1")
