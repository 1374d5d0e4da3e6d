"""A local server speaking the subset of Supabase Storage's API that storage3 and
``SupabaseStorage`` use: multipart upload without upsert (400/409 "Duplicate"), object info
with user metadata, authenticated and public download, list by folder, remove, signed URLs."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class StoredFile:
    data: bytes
    content_type: str
    metadata: dict[str, Any]
    created_at: float = field(default_factory=time.time)


@dataclass
class FakeSupabaseStorage:
    service_key: str
    public_buckets: set[str] = field(default_factory=lambda: {"lora-models"})
    files: dict[tuple[str, str], StoredFile] = field(default_factory=dict)
    signed: dict[str, tuple[str, str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        base = "/storage/v1/object"
        return Starlette(
            routes=[
                Route(base + "/list/{bucket}", self._list, methods=["POST"]),
                Route(base + "/info/{bucket}/{path:path}", self._info, methods=["GET"]),
                Route(base + "/public/{bucket}/{path:path}", self._public, methods=["GET"]),
                Route(base + "/sign/{bucket}/{path:path}", self._sign, methods=["POST", "GET"]),
                Route(base + "/{bucket}/{path:path}", self._object, methods=["POST", "GET"]),
                Route(base + "/{bucket}", self._remove, methods=["DELETE"]),
            ]
        )

    def _authorised(self, request: Request) -> bool:
        self.requests.append((request.method, request.url.path))
        return request.headers.get("authorization") == f"Bearer {self.service_key}"

    @staticmethod
    def _error(status: int, code: str, message: str, http_status: int = 400) -> JSONResponse:
        return JSONResponse(
            {"statusCode": str(status), "error": code, "message": message}, status_code=http_status
        )

    async def _object(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(403, "Unauthorized", "invalid signature", 403)
        key = (request.path_params["bucket"], request.path_params["path"])
        if request.method == "GET":
            stored = self.files.get(key)
            if stored is None:
                return self._error(404, "not_found", "Object not found")
            return Response(stored.data, media_type=stored.content_type)
        if key in self.files and request.headers.get("x-upsert") != "true":
            return self._error(409, "Duplicate", "The resource already exists")
        form = await request.form()
        upload = form["file"]
        data = await upload.read()  # type: ignore[union-attr]
        metadata = json.loads(str(form.get("metadata") or "{}"))
        self.files[key] = StoredFile(data, upload.content_type or "application/octet-stream", metadata)  # type: ignore[union-attr]
        return JSONResponse({"Key": "/".join(key), "Id": secrets.token_hex(8)})

    async def _info(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(403, "Unauthorized", "invalid signature", 403)
        stored = self.files.get((request.path_params["bucket"], request.path_params["path"]))
        if stored is None:
            return self._error(404, "not_found", "Object not found", 404)
        return JSONResponse({"name": request.path_params["path"], "size": len(stored.data),
                             "content_type": stored.content_type, "metadata": stored.metadata})  # fmt: skip

    async def _public(self, request: Request) -> Response:
        bucket = request.path_params["bucket"]
        stored = self.files.get((bucket, request.path_params["path"]))
        if bucket not in self.public_buckets or stored is None:
            return self._error(404, "not_found", "Object not found")
        return Response(stored.data, media_type=stored.content_type)

    async def _sign(self, request: Request) -> Response:
        key = (request.path_params["bucket"], request.path_params["path"])
        if request.method == "GET":
            if self.signed.get(request.query_params.get("token", "")) != key or key not in self.files:
                return self._error(400, "InvalidSignature", "invalid token")
            return Response(self.files[key].data, media_type=self.files[key].content_type)
        if not self._authorised(request):
            return self._error(403, "Unauthorized", "invalid signature", 403)
        token = secrets.token_urlsafe(16)
        self.signed[token] = key
        return JSONResponse({"signedURL": f"/object/sign/{key[0]}/{key[1]}?token={token}"})

    async def _list(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(403, "Unauthorized", "invalid signature", 403)
        body = await request.json()
        bucket, prefix = request.path_params["bucket"], str(body.get("prefix") or "").strip("/")
        limit, offset = int(body.get("limit", 100)), int(body.get("offset", 0))
        entries: dict[str, dict[str, Any]] = {}
        for (b, path), stored in sorted(self.files.items()):
            if b != bucket or (prefix and not path.startswith(prefix + "/")):
                continue
            rest = path[len(prefix) + 1 :] if prefix else path
            head, _, tail = rest.partition("/")
            if tail:
                entries.setdefault(head, {"name": head, "id": None, "metadata": None})
            else:
                entries[head] = {
                    "name": head,
                    "id": secrets.token_hex(4),
                    "metadata": {"size": len(stored.data)},
                }
        return JSONResponse(list(entries.values())[offset : offset + limit])

    async def _remove(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(403, "Unauthorized", "invalid signature", 403)
        bucket = request.path_params["bucket"]
        removed = []
        for path in (await request.json())["prefixes"]:
            if self.files.pop((bucket, path), None) is not None:
                removed.append({"name": path})
        return JSONResponse(removed)
