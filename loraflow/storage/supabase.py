"""Object storage on Supabase Storage (storage3), chosen with ``LORAFLOW_STORAGE=supabase``.

Keys are ``{bucket}/{path}`` as everywhere (buckets ``lora-models``, ``lora-training-images``,
``lora-validation``, ``lora-staging``, ``lora-keyframes``). Uploads go through storage3 with
``upsert`` off, so Storage itself refuses to overwrite; the sha256 travels as the object's user
metadata. Downloads stream with httpx (storage3's ``download`` returns the whole body in
memory, which a LoRA of 100+ MB should not need). ``url`` is the public URL for the public
library (``lora-models``) and a signed URL for the other buckets.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from loraflow.storage.base import ObjectExists, ObjectNotFound, StoredObject, check_key

PUBLIC_BUCKETS = frozenset({"lora-models"})
_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}


class SupabaseStorage:
    def __init__(self, url: str, service_key: str, *, signed_url_ttl_s: int = 7 * 24 * 3600) -> None:
        base = url.rstrip("/") + "/storage/v1"
        headers = {"apiKey": service_key, "Authorization": f"Bearer {service_key}"}
        self._client = SyncStorageClient(base, headers)
        self._http = httpx.Client(base_url=base, headers=headers, timeout=httpx.Timeout(30, read=300))
        self._ttl = signed_url_ttl_s

    def put(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        bucket, path = check_key(key)
        digest = hashlib.sha256()
        size = 0
        # Unbuffered: a FileIO, which storage3 passes to httpx as a stream (not read into memory).
        with tempfile.TemporaryFile(buffering=0) as spool:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
            spool.seek(0)
            stored = StoredObject(key, size, digest.hexdigest())
            try:
                self._client.from_(bucket).upload(
                    path,
                    spool,  # type: ignore[arg-type]  # a binary file object: httpx streams it
                    {
                        "upsert": "false",
                        "content-type": _content_type(path),
                        "metadata": {"sha256": stored.sha256, "size": str(size)},
                    },
                )
            except StorageApiError as exc:
                if not _is_duplicate(exc):
                    raise
                if self.stat(key).sha256 != stored.sha256:
                    raise ObjectExists(f"{key} already exists with other content") from None
        return stored

    def get(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        bucket, path = check_key(key)
        with self._http.stream("GET", f"/object/{bucket}/{path}") as r:
            if r.status_code in (400, 404):
                raise ObjectNotFound(key)
            r.raise_for_status()
            yield from r.iter_bytes(chunk_size)

    def stat(self, key: str) -> StoredObject:
        bucket, path = check_key(key)
        try:
            info: dict[str, Any] = self._client.from_(bucket).info(path)
        except StorageApiError as exc:
            if str(exc.status) in ("400", "404"):
                raise ObjectNotFound(key) from None
            raise
        metadata = info.get("metadata") or {}
        sha256 = metadata.get("sha256")
        size = int(info.get("size") or metadata.get("size") or 0)
        if not sha256:  # not uploaded by loraflow: hash it
            digest = hashlib.sha256()
            size = 0
            for chunk in self.get(key):
                digest.update(chunk)
                size += len(chunk)
            sha256 = digest.hexdigest()
        return StoredObject(key, size, sha256)

    def list(self, prefix: str) -> list[str]:
        bucket, _, folder = prefix.partition("/")
        check_key(f"{bucket}/x")
        keys: list[str] = []
        self._walk(bucket, folder.strip("/"), keys)
        return sorted(keys)

    def _walk(self, bucket: str, folder: str, keys: list[str]) -> None:
        offset = 0
        while True:
            page = self._client.from_(bucket).list(folder, {"limit": 1000, "offset": offset})
            for item in page:
                name = f"{folder}/{item['name']}" if folder else item["name"]
                if item.get("id") is None:  # a folder
                    self._walk(bucket, name, keys)
                else:
                    keys.append(f"{bucket}/{name}")
            if len(page) < 1000:
                return
            offset += len(page)

    def url(self, key: str) -> str:
        bucket, path = check_key(key)
        files = self._client.from_(bucket)
        if bucket in PUBLIC_BUCKETS:
            return files.get_public_url(path)
        return files.create_signed_url(path, self._ttl)["signedURL"]

    def delete(self, key: str) -> None:
        bucket, path = check_key(key)
        self._client.from_(bucket).remove([path])


def _is_duplicate(exc: StorageApiError) -> bool:
    return str(exc.status) == "409" or exc.code == "Duplicate" or "already exists" in exc.message


def _content_type(path: str) -> str:
    for suffix, kind in _CONTENT_TYPES.items():
        if path.endswith(suffix):
            return kind
    return "application/octet-stream"
