"""Object storage on Supabase Storage, chosen with ``LORAFLOW_STORAGE=supabase``.

Keys are ``{bucket}/{path}`` as everywhere (buckets ``lora-models``, ``lora-training-images``,
``lora-validation``, ``lora-staging``, ``lora-keyframes``, ``lora-logs``). The wire contract is the vendor's
OpenAPI document, written down as typed models in ``loraflow.storage.supabase_api``.

Uploads go through storage3 with upsert off, so Storage itself refuses to overwrite; the sha256
travels as the object's user metadata. storage3 is also used for listing, removing and public
URLs, where what it sends matches the document. Object info, downloads and signed URLs go
through httpx directly:

* downloads stream (storage3's ``download`` holds the whole body in memory, which a LoRA of 100+
  MB should not need);
* info and download use the ``authenticated`` routes, which refuse a bad key with a 403 instead
  of answering as the anon role ("not found");
* storage3's ``create_signed_url`` sends ``expiresIn`` as a string where the document says
  integer (``#/paths/~1object~1sign~1{bucketName}~1{*}/post/requestBody``).

Errors: Storage answers every non-500 error with HTTP 400 and the real code in the body
(``#/components/schemas/def-1``), so a missing object is recognised by the body's ``statusCode``
"404" / ``error`` "not_found", never by the HTTP status. Any other error is raised as storage3's
``StorageApiError`` (``status`` the body's ``statusCode``), whichever path it came from.
"""

from __future__ import annotations

import builtins
import hashlib
import tempfile
from collections.abc import Iterable, Iterator

import httpx
from pydantic import ValidationError
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from loraflow.contracts.names import PUBLIC_BUCKETS
from loraflow.errors import ObjectExists, ObjectNotFound
from loraflow.logging import get_logger
from loraflow.storage.base import StoredObject, check_key
from loraflow.storage.supabase_api import (
    OBJECT_LIST,
    ErrorBody,
    ObjectInfo,
    Op,
    SignRequest,
    SignResponse,
)

_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}
_PAGE = 1000  # list page size (the document sets only a minimum of 1)

log = get_logger(__name__)


class SupabaseStorage:
    def __init__(self, url: str, service_key: str, *, signed_url_ttl_s: int = 7 * 24 * 3600) -> None:
        self._base = url.rstrip("/") + "/storage/v1"
        headers = {"apiKey": service_key, "Authorization": f"Bearer {service_key}"}
        self._http = httpx.Client(base_url=self._base, headers=headers, timeout=httpx.Timeout(30, read=300))
        # One connection pool and one set of timeouts for both (storage3's own default is 20 s).
        self._client = SyncStorageClient(self._base + "/", headers, http_client=self._http)
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
                # storage3 sends multipart/form-data with the cacheControl and metadata fields
                # *before* the file part (the server only sees fields that precede the file) and
                # the header x-upsert: false.
                self._client.from_(bucket).upload(
                    path,
                    spool,  # a binary file object: httpx streams it
                    {
                        "upsert": "false",
                        "content-type": _content_type(path),
                        "metadata": {"sha256": stored.sha256, "size": str(size)},
                    },
                )
            except StorageApiError as exc:
                if str(exc.status) != "409":  # statusCode "409" (error "Duplicate"): key exists
                    raise
                if self.stat(key).sha256 != stored.sha256:
                    raise ObjectExists(f"{key} already exists with other content") from None
                log.info("storage.put_retry_same_content", key=key, size=size)
        return stored

    def get(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        bucket, path = check_key(key)
        with self._http.stream(Op.DOWNLOAD.method, Op.DOWNLOAD.path(bucket, path)) as r:
            if r.is_error:
                r.read()
                raise _failure(key, r)
            yield from r.iter_bytes(chunk_size)

    def stat(self, key: str) -> StoredObject:
        bucket, path = check_key(key)
        r = self._http.request(Op.INFO.method, Op.INFO.path(bucket, path))
        if r.is_error:
            raise _failure(key, r)
        info = ObjectInfo.model_validate_json(r.content)
        metadata = info.metadata or {}  # the user metadata put() wrote
        sha256 = metadata.get("sha256")
        size = info.size if info.size is not None else int(metadata.get("size") or 0)
        if not isinstance(sha256, str) or not sha256:  # not uploaded by loraflow: hash it
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
        keys: builtins.list[str] = []
        self._walk(bucket, folder.strip("/"), keys)
        return sorted(keys)

    def _walk(self, bucket: str, folder: str, keys: builtins.list[str]) -> None:
        # The list operation lists one folder (prefix = folder path), folders as entries with a
        # null id; storage3's body (prefix, limit, offset, sortBy) matches ListRequest.
        offset = 0
        while True:
            raw = self._client.from_(bucket).list(folder, {"limit": _PAGE, "offset": offset})
            page = OBJECT_LIST.validate_python(raw)
            for item in page:
                name = f"{folder}/{item.name}" if folder else item.name
                if item.is_folder:
                    self._walk(bucket, name, keys)
                else:
                    keys.append(f"{bucket}/{name}")
            if len(page) < _PAGE:
                return
            offset += len(page)

    def url(self, key: str) -> str:
        bucket, path = check_key(key)
        if bucket in PUBLIC_BUCKETS:
            return self._client.from_(bucket).get_public_url(path)
        body = SignRequest(expiresIn=self._ttl).model_dump(mode="json", exclude_none=True)
        r = self._http.request(Op.SIGN.method, Op.SIGN.path(bucket, path), json=body)
        if r.is_error:
            raise _failure(key, r)
        signed = SignResponse.model_validate_json(r.content).signedURL
        return f"{self._base}/{signed.lstrip('/')}"

    def delete(self, key: str) -> None:
        bucket, path = check_key(key)
        self._client.from_(bucket).remove([path])


def _failure(key: str, response: httpx.Response) -> Exception:
    """The exception for an error answer: ``ObjectNotFound`` only when the body says so."""
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        log.warning("storage.unparseable_error", key=key, http_status=response.status_code)
        return StorageApiError(
            f"unparseable error body: {response.text[:200]!r}", "InternalError", response.status_code
        )
    if body.is_object_not_found:
        return ObjectNotFound(key)
    log.warning(
        "storage.error", key=key, http_status=response.status_code, status=body.statusCode, error=body.error
    )
    return StorageApiError(body.message, body.error, body.statusCode)


def _content_type(path: str) -> str:
    for suffix, kind in _CONTENT_TYPES.items():
        if path.endswith(suffix):
            return kind
    return "application/octet-stream"
