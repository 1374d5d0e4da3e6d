"""Object storage in a local directory (the embedded default): ``DATA_DIR/storage/{bucket}/...``.

Its objects are reached over HTTP through the API (``GET /api/v1/files/{key}``), as Supabase
Storage's are through its own URLs: a public bucket's by a plain URL, a private one's by a URL
signed with an expiry (``file_url_signature``). Responses never show a server path."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from loraflow.contracts.names import PUBLIC_BUCKETS
from loraflow.errors import ObjectExists, ObjectNotFound
from loraflow.storage.base import StoredObject, check_key

#: Where the API serves local storage's objects.
FILES_PATH = "/api/v1/files/"


def file_url_signature(signing_key: bytes, key: str, expires: int) -> str:
    """The signature of a private object's URL, valid until ``expires`` (unix seconds)."""
    return hmac.new(signing_key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def file_url_allows(signing_key: bytes, key: str, expires: int, signature: str, *, now: float) -> bool:
    """Whether a signed URL still grants ``key``."""
    return now < expires and hmac.compare_digest(file_url_signature(signing_key, key, expires), signature)


class LocalStorage:
    def __init__(
        self,
        root: Path,
        *,
        served_at: str | None = None,
        signing_key: bytes | None = None,
        url_ttl_s: int = 7 * 24 * 3600,
        write_bps: int | None = None,
        latency_s: float = 0.0,
    ) -> None:
        """``served_at``: the API's public base URL, which serves these objects; without it
        (tools, tests of storage alone) ``url`` is the file's own ``file://`` URI. ``write_bps``
        and ``latency_s`` emulate a remote store (its link's bytes/s and each request's round trip;
        ``LORAFLOW_LOCAL_STORAGE_WRITE_BPS``, ``_LATENCY_S``), so fault drills can kill a worker
        mid-transfer of a few small files."""
        self._write_bps = write_bps
        self._latency_s = latency_s
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._served_at = served_at.rstrip("/") if served_at else None
        self._signing_key = signing_key
        self._url_ttl_s = url_ttl_s

    def _write(self, file: BinaryIO, chunk: bytes) -> None:
        if not self._write_bps:
            file.write(chunk)
            return
        slice_size = max(1, self._write_bps // 20)  # 20 paced writes a second
        for start in range(0, len(chunk), slice_size):
            piece = chunk[start : start + slice_size]
            file.write(piece)
            time.sleep(len(piece) / self._write_bps)  # the emulated link, not a wait for an event

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key

    def put(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        time.sleep(self._latency_s)  # the emulated round trip, not a wait for an event
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    self._write(tmp, chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            stored = StoredObject(key, size, digest.hexdigest())
            try:
                os.link(tmp_name, target)  # atomic create-if-absent: never overwrites
            except FileExistsError:
                existing = self.stat(key)
                if existing.sha256 != stored.sha256:
                    raise ObjectExists(f"{key} already exists with other content") from None
            return stored
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)

    def get(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        path = self._path(key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        with f:
            time.sleep(self._latency_s)  # the emulated round trip, not a wait for an event
            while chunk := f.read(chunk_size):
                yield chunk

    def stat(self, key: str) -> StoredObject:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return StoredObject(key, path.stat().st_size, digest.hexdigest())

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".part-")
        )

    def url(self, key: str) -> str:
        if self._served_at is None or self._signing_key is None:
            return self._path(key).as_uri()
        bucket, _ = check_key(key)
        url = f"{self._served_at}{FILES_PATH}{key}"
        if bucket in PUBLIC_BUCKETS:
            return url
        expires = int(time.time()) + self._url_ttl_s
        return f"{url}?expires={expires}&signature={file_url_signature(self._signing_key, key, expires)}"

    def path_of(self, key: str) -> Path:
        """The object's file (for the API's file route): ``ObjectNotFound`` if there is none."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()
