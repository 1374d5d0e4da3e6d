"""The storage interface (local directory now; Supabase Storage implements it too)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from loraflow.contracts.names import Bucket

#: Every bucket a key may name (one home: ``Bucket``).
BUCKETS = tuple(bucket.value for bucket in Bucket)


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class Storage(Protocol):
    def put(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        """Stream ``chunks`` into ``key`` without holding them in memory. Same bytes at an
        existing key: returns it (a retry). Different bytes: ``ObjectExists``."""
        ...

    def get(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream the object's bytes."""
        ...

    def stat(self, key: str) -> StoredObject:
        """Size and sha256 of the object, or ``ObjectNotFound``."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""
        ...

    def url(self, key: str) -> str:
        """Where a client can fetch the object."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object (validation images expire; LoRA files are never deleted)."""
        ...


def check_key(key: str) -> tuple[str, str]:
    """Split and validate ``bucket/path``; refuse anything that could escape the bucket."""
    bucket, _, path = key.partition("/")
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r} in key {key!r}")
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        raise ValueError(f"bad object key {key!r}")
    return bucket, path
