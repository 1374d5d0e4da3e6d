"""Accepting a LoRA's uploaded images: each stored under its key, then all recorded in the
LoRA's dataset (which may close it: then the training starts)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from api.multipart import Upload
from loraflow.contracts.names import uploaded_image_key
from loraflow.db import as_service, datasets
from loraflow.db.datasets import Dataset
from loraflow.storage import Storage

__all__ = ["accept_uploads", "store_uploads"]


def store_uploads(
    storage: Storage, user_id: str, lora_id: str, uploads: list[Upload], first_index: int
) -> list[str]:
    """Store the images as ``first_index``, ``first_index + 1``...; return their keys. Objects
    are never overwritten, so a racing upload of the same index gets ``ObjectExists``."""
    keys = []
    for offset, (checked, data) in enumerate(uploads):
        key = uploaded_image_key(user_id, lora_id, first_index + offset, checked.extension)
        storage.put(key, [data])
        keys.append(key)
    return keys


async def accept_uploads(
    pool: AsyncConnectionPool,
    storage: Storage,
    *,
    user_id: str,
    lora_id: str,
    uploads: list[Upload],
    first_index: int,
) -> Dataset:
    """Store the uploads and record them; the LoRA's dataset as it is now. ``UploadsClosed``
    if the dataset closed (or the LoRA stopped being pending) meanwhile."""
    keys = store_uploads(storage, user_id, lora_id, uploads, first_index)
    async with as_service(pool) as conn:
        return await datasets.record_uploads(conn, lora_id, keys, [storage.url(k) for k in keys])
