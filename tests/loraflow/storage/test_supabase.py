"""SupabaseStorage against a local server held to Supabase Storage's OpenAPI document.

The fake (tests/fakes/supabase_storage.py) validates every request against the models in
``loraflow.storage.supabase_api`` and answers errors the vendor's way (HTTP 400, the real code in
the body's ``statusCode``). The ``backend`` fixture fails a test if the client sent anything the
contract refuses, even where the client would have swallowed the error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError

from loraflow.errors import ObjectExists, ObjectNotFound
from loraflow.storage import supabase as supabase_module
from loraflow.storage.supabase import SupabaseStorage
from loraflow.storage.supabase_api import ErrorBody, Op
from tests.fakes.server import serve
from tests.fakes.supabase_storage import FakeSupabaseStorage

KEY = "service-role-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
# Answers that mean "your request does not match the contract" (not: "no such object").
CONTRACT_CODES = {"InvalidRequest", "InvalidMimeType"}


def contract_refusals(fake: FakeSupabaseStorage) -> list[tuple[str, str, ErrorBody]]:
    return [r for r in fake.refused if (r[2].model_extra or {}).get("code") in CONTRACT_CODES]


@pytest.fixture
def fake() -> FakeSupabaseStorage:
    return FakeSupabaseStorage(service_key=KEY)


@pytest.fixture
def url(fake: FakeSupabaseStorage) -> Iterator[str]:
    with serve(fake.app()) as base:
        yield base


@pytest.fixture
def backend(url: str, fake: FakeSupabaseStorage) -> Iterator[tuple[SupabaseStorage, FakeSupabaseStorage]]:
    yield SupabaseStorage(url, KEY), fake
    assert contract_refusals(fake) == []


def storage_error(exc: pytest.ExceptionInfo[StorageApiError]) -> tuple[str, str]:
    return str(exc.value.status), exc.value.code


# -- round trips ---------------------------------------------------------------------------------


def test_round_trip_streams_and_records_the_sha256(
    backend: tuple[SupabaseStorage, FakeSupabaseStorage],
) -> None:
    storage, fake = backend
    chunks = [bytes([i]) * (1 << 20) for i in range(5)]  # 5 MiB, in chunks
    stored = storage.put("lora-models/l1/abc.safetensors", iter(chunks))
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert (stored.size, stored.sha256) == (5 << 20, expected)
    kept = fake.files[("lora-models", "l1/abc.safetensors")]
    assert kept.metadata == {"sha256": expected, "size": str(5 << 20)}  # the user metadata
    assert kept.content_type == "application/octet-stream"
    assert storage.stat("lora-models/l1/abc.safetensors") == stored
    got = list(storage.get("lora-models/l1/abc.safetensors", chunk_size=1 << 16))
    assert len(got) > 1 and hashlib.sha256(b"".join(got)).hexdigest() == expected


def test_never_overwrites(backend: tuple[SupabaseStorage, FakeSupabaseStorage]) -> None:
    storage, fake = backend
    storage.put("lora-validation/l1/0.png", [b"first"])
    assert fake.files[("lora-validation", "l1/0.png")].content_type == "image/png"
    assert storage.put("lora-validation/l1/0.png", [b"first"]).size == 5  # the same bytes: a retry
    with pytest.raises(ObjectExists):
        storage.put("lora-validation/l1/0.png", [b"second"])
    assert fake.files[("lora-validation", "l1/0.png")].data == b"first"
    # Both second puts met the server's duplicate answer: HTTP 400 with statusCode "409".
    assert [r[2].statusCode for r in fake.refused] == ["409", "409"]


def test_urls_public_for_the_library_and_signed_otherwise(
    backend: tuple[SupabaseStorage, FakeSupabaseStorage],
) -> None:
    storage, _ = backend
    storage.put("lora-models/l1/a.safetensors", [b"weights"])
    storage.put("lora-training-images/u/l1/uploaded/0.png", [b"png"])
    public = storage.url("lora-models/l1/a.safetensors")
    signed = storage.url("lora-training-images/u/l1/uploaded/0.png")
    assert "/storage/v1/object/public/lora-models/" in public
    assert "/storage/v1/object/sign/lora-training-images/" in signed and "token=" in signed
    assert httpx.get(public).content == b"weights"  # no credentials needed
    assert httpx.get(signed).content == b"png"
    with pytest.raises(ObjectNotFound):  # the server refuses to sign a missing object
        storage.url("lora-training-images/u/l1/uploaded/missing.png")


def test_a_signed_url_opens_only_its_own_object(
    backend: tuple[SupabaseStorage, FakeSupabaseStorage],
) -> None:
    storage, _ = backend
    storage.put("lora-validation/l1/0.png", [b"zero"])
    storage.put("lora-validation/l1/1.png", [b"one"])
    signed = storage.url("lora-validation/l1/0.png")
    forged = httpx.get(signed.replace("/0.png?", "/1.png?"))
    assert forged.status_code == 400
    assert ErrorBody.model_validate_json(forged.content).error == "InvalidSignature"


def test_list_delete_and_missing(backend: tuple[SupabaseStorage, FakeSupabaseStorage]) -> None:
    storage, _ = backend
    for key in ("lora-validation/l1/0.png", "lora-validation/l1/1.png", "lora-validation/l2/0.png"):
        storage.put(key, [key.encode()])
    assert storage.list("lora-validation/l1/") == ["lora-validation/l1/0.png", "lora-validation/l1/1.png"]
    assert len(storage.list("lora-validation/")) == 3
    storage.delete("lora-validation/l1/0.png")
    storage.delete("lora-validation/l1/0.png")  # removing a missing key is not an error
    assert storage.list("lora-validation/l1/") == ["lora-validation/l1/1.png"]
    with pytest.raises(ObjectNotFound):
        storage.stat("lora-validation/l1/0.png")
    with pytest.raises(ObjectNotFound):
        list(storage.get("lora-validation/l1/0.png"))
    with pytest.raises(ValueError, match="bad object key"):
        storage.put("lora-validation/../etc/passwd", [b"x"])


def test_keys_that_need_percent_encoding(backend: tuple[SupabaseStorage, FakeSupabaseStorage]) -> None:
    """storage3 (upload, list, remove, public URL) and httpx (info, download, sign) must encode a
    key the same way."""
    storage, fake = backend
    for key in ("lora-training-images/u/l1/uploaded/my photo ü.png", "lora-models/l1/a b+c.safetensors"):
        stored = storage.put(key, [b"bytes"])
        assert fake.files[tuple(key.split("/", 1))].data == b"bytes"  # type: ignore[index]
        assert storage.stat(key) == stored and b"".join(storage.get(key)) == b"bytes"
        assert storage.list(key.rsplit("/", 1)[0]) == [key]
        assert httpx.get(storage.url(key)).content == b"bytes"
        storage.delete(key)
        assert storage.list(key.rsplit("/", 1)[0]) == []


def test_list_walks_pages_and_nested_folders(
    backend: tuple[SupabaseStorage, FakeSupabaseStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage, fake = backend
    monkeypatch.setattr(supabase_module, "_PAGE", 2)  # so five entries take three pages
    keys = [f"lora-staging/j1/{name}" for name in ("a", "b", "c", "d/e", "d/f/g", "h")]
    for key in keys:
        storage.put(key, [b"x"])
    assert storage.list("lora-staging/j1") == sorted(keys)
    assert storage.list("lora-staging/") == sorted(keys)
    assert storage.list("lora-staging/j2/") == []
    assert sum(1 for method, path in fake.requests if path.endswith("/object/list/lora-staging")) > 3


def test_stat_hashes_an_object_that_has_no_sha256(
    url: str, backend: tuple[SupabaseStorage, FakeSupabaseStorage]
) -> None:
    storage, _ = backend
    # Uploaded by someone else: a raw body, no user metadata.
    headers = {**AUTH, "content-type": "image/png"}
    r = httpx.post(f"{url}/storage/v1/object/lora-keyframes/k/0.png", content=b"frame", headers=headers)
    assert r.status_code == 200 and r.json()["Key"] == "lora-keyframes/k/0.png"
    assert storage.stat("lora-keyframes/k/0.png").sha256 == hashlib.sha256(b"frame").hexdigest()


# -- the mismatches with the document that the client used to have -------------------------------


READS = {"get": lambda s, k: list(s.get(k)), "stat": lambda s, k: s.stat(k)}


@pytest.mark.parametrize("read", READS)
def test_a_bad_key_is_an_auth_failure_not_a_missing_object(url: str, read: str) -> None:
    """Errors come as HTTP 400 with the code in the body (#/components/schemas/def-1). The old
    client took HTTP 400/404 (get) or a body statusCode "400"/"404" (stat) for "not found", and
    used the routes that serve an invalid JWT as the anon role; so a wrong service key failed a
    training as "image missing" (non-retryable) instead of as an auth error."""
    SupabaseStorage(url, KEY).put("lora-training-images/u/l1/uploaded/0.png", [b"png"])
    bad = SupabaseStorage(url, "not-the-key")
    with pytest.raises(StorageApiError) as got:
        READS[read](bad, "lora-training-images/u/l1/uploaded/0.png")
    assert storage_error(got) == ("403", "Unauthorized")


@pytest.mark.parametrize("read", READS)
def test_a_missing_bucket_is_not_a_missing_object(url: str, fake: FakeSupabaseStorage, read: str) -> None:
    """A "404" for the bucket (error "Bucket not found") is a deployment fault, not ObjectNotFound:
    only statusCode "404" with error "not_found" is a missing object."""
    fake.buckets.discard("lora-keyframes")
    with pytest.raises(StorageApiError) as got:
        READS[read](SupabaseStorage(url, KEY), "lora-keyframes/k/0.png")
    assert storage_error(got) == ("404", "Bucket not found")


def test_a_put_into_a_missing_bucket_raises(url: str, fake: FakeSupabaseStorage) -> None:
    fake.buckets.discard("lora-keyframes")
    with pytest.raises(StorageApiError) as got:
        SupabaseStorage(url, KEY).put("lora-keyframes/k/0.png", [b"x"])
    assert storage_error(got) == ("404", "Bucket not found")


def test_signed_url_expires_in_is_an_integer(backend: tuple[SupabaseStorage, FakeSupabaseStorage]) -> None:
    """#/paths/~1object~1sign~1{bucketName}~1{*}/post/requestBody: expiresIn is an integer >= 1;
    storage3's create_signed_url sends it as a string."""
    storage, fake = backend
    storage.put("lora-validation/l1/0.png", [b"png"])
    assert httpx.get(storage.url("lora-validation/l1/0.png")).content == b"png"
    token = next(iter(fake.signed))
    assert fake.signed[token][2] > 7 * 24 * 3600  # the TTL arrived as a number of seconds


# -- the fake itself is strict -------------------------------------------------------------------


def _refusal(r: httpx.Response) -> ErrorBody:
    body = ErrorBody.model_validate_json(r.content)  # def-1, whatever went wrong
    assert r.status_code == (404 if body.error == "Not Found" else 400)  # never the code itself
    return body


def _multipart(*parts: tuple[str, Any]) -> tuple[bytes, str]:
    """A multipart body with the parts in the given order (httpx puts data before files)."""
    boundary = "contract-test"
    out = b""
    for name, value in parts:
        if isinstance(value, bytes):
            head = f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
            out += f"--{boundary}\r\n{head}Content-Type: application/octet-stream\r\n\r\n".encode() + value
        else:
            out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "message"),
    [
        # The upload's multipart body must carry a file part.
        (
            "POST",
            "/object/lora-validation/a.png",
            {"multipart": [("cacheControl", "3600")]},
            "400",
            "No content",
        ),
        ("POST", "/object/lora-validation/a.png", {"multipart": [("metadata", "{}")] * 11}, "400", "limit"),
        # JSON bodies against their schemas: required properties, types (strict), bounds.
        ("POST", "/object/sign/lora-validation/a.png", {"json": {"expiresIn": "60"}}, "400", "expiresIn"),
        ("POST", "/object/sign/lora-validation/a.png", {"json": {"expiresIn": 0}}, "400", "expiresIn"),
        ("POST", "/object/sign/lora-validation/a.png", {"json": {}}, "400", "expiresIn"),
        ("POST", "/object/list/lora-validation", {"json": {"limit": 10}}, "400", "prefix"),
        ("POST", "/object/list/lora-validation", {"json": {"prefix": "", "limit": 0}}, "400", "limit"),
        ("POST", "/object/list/lora-validation", {"json": {"prefix": None}}, "400", "prefix"),
        ("POST", "/object/list/lora-validation", {"json": {"prefix": "", "sortBy": {}}}, "400", "column"),
        ("DELETE", "/object/lora-validation", {"json": {"prefixes": []}}, "400", "prefixes"),
        ("DELETE", "/object/lora-validation", {"content": b"a.png"}, "415", "Content-Type"),
        # Query parameters: the signed download needs its token.
        ("GET", "/object/sign/lora-validation/a.png", {}, "400", "token"),
        ("GET", "/object/sign/lora-validation/a.png?token=forged", {}, "400", "Invalid signature"),
        # Auth: def-0 requires the header (a validation error); a wrong token is a 403.
        ("GET", "/object/authenticated/lora-validation/a.png", {"auth": None}, "400", "authorization"),
        ("GET", "/object/authenticated/lora-validation/a.png", {"auth": "Bearer x"}, "403", "invalid"),
        ("POST", "/object/lora-validation/a.png", {"auth": "Bearer x", "files": {"f": b"x"}}, "403", ""),
        # Missing things: the code is in the body, the HTTP status stays 400.
        ("GET", "/object/authenticated/lora-validation/none.png", {}, "404", "Object not found"),
        ("GET", "/object/authenticated/no-such-bucket/a.png", {}, "404", "Bucket not found"),
        ("GET", "/object/public/lora-validation/a.png", {"auth": None}, "404", "Bucket not found"),
        ("PUT", "/object/lora-validation/a.png", {}, "404", "Route PUT:"),  # not in the subset
    ],
)
def test_the_fake_refuses_what_the_document_refuses(
    url: str,
    fake: FakeSupabaseStorage,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: str,
    message: str,
) -> None:
    auth = kwargs.pop("auth", AUTH["Authorization"])
    headers = {"Authorization": auth} if auth else {}
    if "content" in kwargs:
        headers["content-type"] = "text/plain"
    if "multipart" in kwargs:
        kwargs["content"], headers["content-type"] = _multipart(*kwargs.pop("multipart"))
    r = httpx.request(method, f"{url}/storage/v1{path}", headers=headers, **kwargs)
    body = _refusal(r)
    assert body.statusCode == status
    assert message in body.message
    assert fake.refused[-1][2] == body


def test_the_fake_reads_only_the_fields_before_the_file_part(url: str, fake: FakeSupabaseStorage) -> None:
    """The server streams the file, so a field after the file part is never seen."""
    meta = json.dumps({"sha256": "x"})
    for key, parts in {
        "before.png": (("cacheControl", "60"), ("metadata", meta), ("file", b"data")),
        "after.png": (("file", b"data"), ("cacheControl", "60"), ("metadata", meta)),
    }.items():
        content, content_type = _multipart(*parts)
        r = httpx.post(
            f"{url}/storage/v1/object/lora-validation/{key}",
            content=content,
            headers={**AUTH, "content-type": content_type},
        )
        assert r.status_code == 200, r.text
    before, after = (
        fake.files[("lora-validation", "before.png")],
        fake.files[("lora-validation", "after.png")],
    )
    assert (before.metadata, before.cache_control) == ({"sha256": "x"}, "max-age=60")
    assert (after.metadata, after.cache_control) == (None, "no-cache")


def test_the_fake_answers_inside_the_contract(url: str, fake: FakeSupabaseStorage) -> None:
    """Success bodies parse with the response models (objectSchema forbids unknown properties)."""
    from loraflow.storage.supabase_api import OBJECT_LIST, ObjectInfo, SignResponse, UploadResponse

    storage = SupabaseStorage(url, KEY)
    storage.put("lora-validation/l1/0.png", [b"png"])
    storage.put("lora-validation/l1/deeper/1.png", [b"png"])
    post = httpx.post(
        f"{url}/storage/v1{Op.UPLOAD.path('lora-validation', 'l1/2.png')}", headers=AUTH, files={"file": b"x"}
    )
    assert UploadResponse.model_validate_json(post.content).Key == "lora-validation/l1/2.png"
    listed = httpx.post(
        f"{url}/storage/v1{Op.LIST.path('lora-validation')}", headers=AUTH, json={"prefix": "l1"}
    )
    entries = OBJECT_LIST.validate_json(listed.content)
    assert [(e.name, e.is_folder) for e in entries] == [("0.png", False), ("2.png", False), ("deeper", True)]
    info = httpx.get(f"{url}/storage/v1{Op.INFO.path('lora-validation', 'l1/0.png')}", headers=AUTH)
    assert ObjectInfo.model_validate_json(info.content).size == 3
    sign = httpx.post(
        f"{url}/storage/v1{Op.SIGN.path('lora-validation', 'l1/0.png')}", headers=AUTH, json={"expiresIn": 60}
    )
    assert SignResponse.model_validate_json(sign.content).signedURL.startswith(
        "/object/sign/lora-validation/"
    )
    removed = httpx.request(
        "DELETE",
        f"{url}/storage/v1{Op.REMOVE.path('lora-validation')}",
        headers=AUTH,
        json={"prefixes": ["l1/0.png", "l1/none.png"]},
    )
    assert [e.name for e in OBJECT_LIST.validate_json(removed.content)] == ["l1/0.png"]
    assert contract_refusals(fake) == []
