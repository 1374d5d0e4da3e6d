"""SupabaseStorage against a local server speaking Supabase Storage's API subset."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from loraflow.storage import ObjectExists, ObjectNotFound
from loraflow.storage.supabase import SupabaseStorage
from tests.fakes.server import serve
from tests.fakes.supabase_storage import FakeSupabaseStorage

KEY = "service-role-key"


@pytest.fixture
def backend() -> Iterator[tuple[SupabaseStorage, FakeSupabaseStorage]]:
    fake = FakeSupabaseStorage(service_key=KEY)
    with serve(fake.app()) as url:
        yield SupabaseStorage(url, KEY), fake


def test_round_trip_streams_and_records_the_sha256(
    backend: tuple[SupabaseStorage, FakeSupabaseStorage],
) -> None:
    storage, fake = backend
    chunks = [bytes([i]) * (1 << 20) for i in range(5)]  # 5 MiB, in chunks
    stored = storage.put("lora-models/l1/abc.safetensors", iter(chunks))
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert (stored.size, stored.sha256) == (5 << 20, expected)
    assert fake.files[("lora-models", "l1/abc.safetensors")].metadata["sha256"] == expected
    assert storage.stat("lora-models/l1/abc.safetensors") == stored
    got = list(storage.get("lora-models/l1/abc.safetensors", chunk_size=1 << 16))
    assert len(got) > 1 and hashlib.sha256(b"".join(got)).hexdigest() == expected


def test_never_overwrites(backend: tuple[SupabaseStorage, FakeSupabaseStorage]) -> None:
    storage, fake = backend
    storage.put("lora-validation/l1/0.png", [b"first"])
    assert storage.put("lora-validation/l1/0.png", [b"first"]).size == 5  # the same bytes: a retry
    with pytest.raises(ObjectExists):
        storage.put("lora-validation/l1/0.png", [b"second"])
    assert fake.files[("lora-validation", "l1/0.png")].data == b"first"


def test_urls_public_for_the_library_and_signed_otherwise(
    backend: tuple[SupabaseStorage, FakeSupabaseStorage],
) -> None:
    storage, _ = backend
    storage.put("lora-models/l1/a.safetensors", [b"weights"])
    storage.put("lora-training-images/u/l1/uploaded/0.png", [b"png"])
    public = storage.url("lora-models/l1/a.safetensors")
    signed = storage.url("lora-training-images/u/l1/uploaded/0.png")
    assert "/object/public/lora-models/" in public and "token=" in signed
    assert httpx.get(public).content == b"weights"  # no credentials needed
    assert httpx.get(signed).content == b"png"


def test_list_delete_and_missing(backend: tuple[SupabaseStorage, FakeSupabaseStorage]) -> None:
    storage, _ = backend
    for key in ("lora-validation/l1/0.png", "lora-validation/l1/1.png", "lora-validation/l2/0.png"):
        storage.put(key, [key.encode()])
    assert storage.list("lora-validation/l1/") == ["lora-validation/l1/0.png", "lora-validation/l1/1.png"]
    assert len(storage.list("lora-validation/")) == 3
    storage.delete("lora-validation/l1/0.png")
    assert storage.list("lora-validation/l1/") == ["lora-validation/l1/1.png"]
    with pytest.raises(ObjectNotFound):
        storage.stat("lora-validation/l1/0.png")
    with pytest.raises(ObjectNotFound):
        list(storage.get("lora-validation/l1/0.png"))
    with pytest.raises(ValueError, match="bad object key"):
        storage.put("lora-validation/../etc/passwd", [b"x"])
