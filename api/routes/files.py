"""/api/v1/files/{key}: local storage's objects over HTTP (the embedded default; with Supabase
Storage the URLs are Supabase's own). A public bucket's objects (the library's LoRA files) are
served to anyone; a private one's only with a valid, unexpired signature, as a signed Supabase
URL would be. No server path ever appears in a response."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from api.deps import SettingsDep, StorageDep
from api.errors import ApiError, responses
from loraflow.contracts.names import PUBLIC_BUCKETS
from loraflow.errors import ObjectNotFound
from loraflow.storage.base import check_key
from loraflow.storage.local import LocalStorage, file_url_allows

router = APIRouter(prefix="/files", tags=["files"])


@router.get(
    "/{key:path}",
    summary="An object of local storage (public bucket, or a signed URL)",
    responses=responses(403, 404),
    response_class=FileResponse,
)
async def get_file(
    key: str,
    storage: StorageDep,
    settings: SettingsDep,
    expires: Annotated[int | None, Query(description="Signed URLs: when it expires (unix seconds).")] = None,
    signature: Annotated[str | None, Query(max_length=128, description="Signed URLs: its signature.")] = None,
) -> FileResponse:
    if not isinstance(storage, LocalStorage):
        raise ApiError(404, "not_found", "objects are served by the storage provider's own URLs")
    try:
        bucket, _ = check_key(key)
    except ValueError as exc:
        raise ApiError(404, "not_found", "no such object") from exc
    if bucket not in PUBLIC_BUCKETS and not (
        expires is not None
        and signature is not None
        and file_url_allows(settings.file_signing_key(), key, expires, signature, now=time.time())
    ):
        raise ApiError(403, "forbidden", "this object needs a valid, unexpired signed URL")
    try:
        path = storage.path_of(key)
    except (ObjectNotFound, OSError) as exc:  # OSError: e.g. a name too long for the filesystem
        raise ApiError(404, "not_found", "no such object") from exc
    return FileResponse(path, filename=path.name)
