"""The local-directory storage backend: streamed, checksummed, never overwritten."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from loraflow.errors import ObjectExists, ObjectNotFound
from loraflow.storage.local import LocalStorage


def test_round_trip_streams_and_checksums(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    chunks = [b"a" * 1000, b"b" * 3000]
    stored = storage.put("lora-models/x/file.safetensors", iter(chunks))
    assert stored.size == 4000 and stored.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert b"".join(storage.get("lora-models/x/file.safetensors", chunk_size=512)) == b"".join(chunks)
    assert storage.stat("lora-models/x/file.safetensors") == stored
    assert storage.list("lora-models/x") == ["lora-models/x/file.safetensors"]
    assert storage.url("lora-models/x/file.safetensors").startswith("file://")


def test_never_overwrites_but_a_retry_with_the_same_bytes_succeeds(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("lora-models/x/f", [b"one"])
    assert storage.put("lora-models/x/f", [b"one"]).sha256 == hashlib.sha256(b"one").hexdigest()
    with pytest.raises(ObjectExists):
        storage.put("lora-models/x/f", [b"two"])
    assert b"".join(storage.get("lora-models/x/f")) == b"one"
    assert storage.list("lora-models") == ["lora-models/x/f"]  # no partial files left behind


def test_a_failed_stream_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    def broken():
        yield b"half"
        raise ConnectionError("agent went away")

    with pytest.raises(ConnectionError):
        storage.put("lora-models/x/f", broken())
    with pytest.raises(ObjectNotFound):
        storage.stat("lora-models/x/f")
    assert storage.list("lora-models") == []


@pytest.mark.parametrize("key", ["nope/x", "lora-models/../etc/passwd", "lora-models/", "lora-models/a//b"])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalStorage(tmp_path).put(key, [b"x"])


def test_served_urls_are_the_apis_public_or_signed_and_expire(tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlsplit

    from loraflow.storage.local import file_url_allows

    key = b"k" * 32
    storage = LocalStorage(tmp_path, served_at="https://api.example/", signing_key=key, url_ttl_s=60)
    assert (
        storage.url("lora-models/x/f.safetensors")
        == "https://api.example/api/v1/files/lora-models/x/f.safetensors"
    )
    signed = urlsplit(storage.url("lora-validation/x/0.png"))
    assert (signed.scheme, signed.netloc, signed.path) == (
        "https",
        "api.example",
        "/api/v1/files/lora-validation/x/0.png",
    )
    query = {k: v[0] for k, v in parse_qs(signed.query).items()}
    expires, signature = int(query["expires"]), query["signature"]
    assert file_url_allows(key, "lora-validation/x/0.png", expires, signature, now=expires - 1)
    assert not file_url_allows(key, "lora-validation/x/0.png", expires, signature, now=expires)  # expired
    assert not file_url_allows(
        key, "lora-validation/x/1.png", expires, signature, now=expires - 1
    )  # other object
    assert not file_url_allows(b"other" * 8, "lora-validation/x/0.png", expires, signature, now=expires - 1)
