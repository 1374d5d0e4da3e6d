"""Object storage in a local directory (the embedded default): ``DATA_DIR/storage/{bucket}/...``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from loraflow.errors import ObjectExists, ObjectNotFound
from loraflow.storage.base import StoredObject, check_key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key

    def put(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    tmp.write(chunk)
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
        return self._path(key).as_uri()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()
