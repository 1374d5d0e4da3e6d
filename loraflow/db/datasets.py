"""A LoRA's dataset in PostgreSQL (``lora_datasets``, sql/0006): the images it trains on, in
order, when it closed (its training started), and for a video job's LoRA the job slot and the
character. The one place that writes it; the API and the activities both come through here.

Every function takes a connection inside a transaction that runs as the service
(``loraflow.db.as_service``): clients cannot read or write this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from loraflow.contracts.limits import MIN_IMAGES
from loraflow.errors import LoraNotFound, UploadsClosed

__all__ = [
    "PRIMARY_SLOT",
    "Dataset",
    "JobLora",
    "attach_job",
    "dataset",
    "job_lora",
    "job_loras",
    "record_job_dataset",
    "record_uploads",
]

Conn = psycopg.AsyncConnection[Any]

#: The job slot of the LoRA a job asked for by name (the one linked as ``jobs.lora_model_id``);
#: the other slots are character ids.
PRIMARY_SLOT = "primary"


@dataclass(frozen=True)
class Dataset:
    lora_id: str
    image_keys: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    job_slot: str | None = None
    character_id: str | None = None

    @property
    def started(self) -> bool:
        """Closed: its training started, and it takes no more images."""
        return self.started_at is not None


@dataclass(frozen=True)
class JobLora:
    """A video job's LoRA, as its job slot finds it."""

    lora_id: str
    name: str
    character_id: str | None


async def dataset(conn: Conn, lora_id: str) -> Dataset:
    """The LoRA's dataset; an empty, open one if nothing was recorded yet."""
    row = await (
        await conn.execute(
            """SELECT image_keys, started_at, job_slot, character_id
                 FROM lora_datasets WHERE lora_model_id = %s""",
            [lora_id],
        )
    ).fetchone()
    return Dataset(str(lora_id)) if row is None else _dataset(lora_id, row)


async def record_uploads(conn: Conn, lora_id: str, keys: list[str], urls: list[str]) -> Dataset:
    """Append uploaded images (their storage keys, and the URLs listed as the LoRA's reference
    images) and return the dataset as it is now. A standalone LoRA's dataset closes when it
    reaches ``MIN_IMAGES`` (a job's closes when its job hands over the references).

    Uploads to one LoRA serialise on its row, so of two racing uploads only the ones that
    arrive before the dataset closes are taken; the others, and uploads to a LoRA that is no
    longer pending, get ``UploadsClosed``.
    """
    lora = await (
        await conn.execute(
            """SELECT triggered_by_job_id FROM lora_models
                WHERE id = %s AND training_status = 'pending' FOR NO KEY UPDATE""",
            [lora_id],
        )
    ).fetchone()
    if lora is None:
        raise UploadsClosed(f"LoRA {lora_id} no longer takes images")
    row = await (
        await conn.execute(
            """INSERT INTO lora_datasets AS d (lora_model_id, image_keys, started_at)
               VALUES (%(id)s, %(keys)s::text[],
                       CASE WHEN %(closes)s AND cardinality(%(keys)s::text[]) >= %(min)s THEN now() END)
               ON CONFLICT (lora_model_id) DO UPDATE
                  SET image_keys = d.image_keys || EXCLUDED.image_keys,
                      started_at = CASE WHEN %(closes)s
                                         AND cardinality(d.image_keys || EXCLUDED.image_keys) >= %(min)s
                                        THEN now() END
                WHERE d.started_at IS NULL
               RETURNING image_keys, started_at, job_slot, character_id""",
            {
                "id": lora_id,
                "keys": keys,
                "closes": lora["triggered_by_job_id"] is None,
                "min": MIN_IMAGES,
            },
        )
    ).fetchone()
    if row is None:
        raise UploadsClosed(f"LoRA {lora_id} no longer takes images: its training started")
    await _append_reference_urls(conn, lora_id, urls)
    return _dataset(lora_id, row)


async def attach_job(conn: Conn, *, lora_id: str, job_id: str, slot: str) -> None:
    """Record which slot of its video job the LoRA fills. Run it in the transaction that
    created the LoRA, so that a retried creation finds it (``job_lora``) or finds nothing."""
    row = await (
        await conn.execute(
            """INSERT INTO lora_datasets (lora_model_id, job_slot)
               SELECT id, %(slot)s FROM lora_models WHERE id = %(lora)s AND triggered_by_job_id = %(job)s
               ON CONFLICT (lora_model_id) DO UPDATE SET job_slot = EXCLUDED.job_slot
               RETURNING lora_model_id""",
            {"slot": slot, "lora": lora_id, "job": job_id},
        )
    ).fetchone()
    if row is None:
        raise LoraNotFound(f"{lora_id} of job {job_id}")


async def job_lora(conn: Conn, *, job_id: str, slot: str, user_id: str) -> JobLora | None:
    """The LoRA that fills ``slot`` of the job, if the job's user has one there."""
    row = await (
        await conn.execute(
            """SELECT m.id, m.name, d.character_id
                 FROM lora_models m JOIN lora_datasets d ON d.lora_model_id = m.id
                WHERE m.triggered_by_job_id = %s AND d.job_slot = %s AND m.user_id = %s
                ORDER BY m.created_at LIMIT 1""",
            [job_id, slot, user_id],
        )
    ).fetchone()
    return None if row is None else JobLora(str(row["id"]), row["name"], row["character_id"])


async def record_job_dataset(
    conn: Conn, *, lora_id: str, image_keys: list[str], urls: list[str], character_id: str
) -> None:
    """A job's LoRA gets its dataset (the user's uploads and the job's references, composed)
    and closes it; ``urls`` become its reference images. Idempotent: a retry writes the same."""
    await conn.execute(
        """INSERT INTO lora_datasets AS d (lora_model_id, image_keys, started_at, character_id)
           VALUES (%s, %s::text[], now(), %s)
           ON CONFLICT (lora_model_id) DO UPDATE
              SET image_keys = EXCLUDED.image_keys,
                  started_at = coalesce(d.started_at, EXCLUDED.started_at),
                  character_id = EXCLUDED.character_id""",
        [lora_id, image_keys, character_id],
    )
    await conn.execute("UPDATE lora_models SET reference_image_urls = %s WHERE id = %s", [urls, lora_id])


async def job_loras(conn: Conn, job_id: str) -> list[dict[str, Any]]:
    """The job's LoRAs as they stand, oldest first: id, name, character_id, training_status,
    error_message, validation_passed, and progress (0-100) of the latest training."""
    cur = await conn.execute(
        """SELECT m.id, m.name, m.training_status, m.error_message, m.validation_passed,
                  d.character_id, coalesce(j.training_progress, 0) AS progress
             FROM lora_models m
             LEFT JOIN lora_datasets d ON d.lora_model_id = m.id
             LEFT JOIN LATERAL (
               SELECT training_progress FROM lora_training_jobs
                WHERE lora_model_id = m.id ORDER BY created_at DESC LIMIT 1) j ON true
            WHERE m.triggered_by_job_id = %s ORDER BY m.created_at""",
        [job_id],
    )
    return await cur.fetchall()


def _dataset(lora_id: str, row: dict[str, Any]) -> Dataset:
    return Dataset(
        str(lora_id), list(row["image_keys"]), row["started_at"], row["job_slot"], row["character_id"]
    )


async def _append_reference_urls(conn: Conn, lora_id: str, urls: list[str]) -> None:
    await conn.execute(
        """UPDATE lora_models SET reference_image_urls = coalesce(reference_image_urls, '{}') || %s::text[]
            WHERE id = %s""",
        [urls, lora_id],
    )
