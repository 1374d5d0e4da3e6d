"""A local server speaking the part of Supabase Storage's API that loraflow uses, held to the
vendor's OpenAPI document through the models in ``loraflow.storage.supabase_api``.

Every request is checked the way the real server checks it, in the same order: path parameters,
JSON body and query against the operation's schema, then the ``authorization`` header
(``#/components/schemas/def-0``); a mismatch is HTTP 400 with ``statusCode`` "400" and the
validation message. Then the bearer token (wrong: ``statusCode`` "403", "Unauthorized"), then the
operation itself. Errors use the document's error body (``#/components/schemas/def-1``) and, as
the vendor documents, travel as HTTP 400 whatever their ``statusCode``; only a route the server
does not have is an HTTP 404 (the server's not-found handler). Success bodies are built through
the response models, so the fake cannot answer outside the contract either.

Where the document is silent (the upload's multipart body, the info answer, the two legacy
routes below), the fake follows the vendor's server (supabase/storage): see the models' notes.
Every error answered is kept in ``refused``, so a test can assert a client made no bad request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loraflow.storage.base import BUCKETS
from loraflow.storage.supabase_api import (
    OBJECT_LIST,
    AuthHeaders,
    BucketPath,
    DownloadQuery,
    ErrorBody,
    FilePart,
    InfoQuery,
    ListRequest,
    ObjectEntry,
    ObjectInfo,
    ObjectPath,
    Op,
    RemoveRequest,
    SignedDownloadQuery,
    SignRequest,
    SignResponse,
    UploadForm,
    UploadResponse,
)

BASE = "/storage/v1"
M = TypeVar("M", bound=BaseModel)


class Refused(Exception):
    """Answer with this error body (HTTP 400 unless said otherwise)."""

    def __init__(self, body: ErrorBody, http_status: int = 400) -> None:
        super().__init__(body.message)
        self.body = body
        self.http_status = http_status


# The vendor server's errors (supabase/storage src/internal/errors/codes.ts), as def-1 bodies;
# ``code`` is an extra property the server adds and def-1 allows.
def _err(status: str, error: str, message: str, code: str) -> Refused:
    return Refused(ErrorBody(statusCode=status, error=error, message=message, code=code))


def invalid(message: str) -> Refused:
    return _err("400", "Error", message, "InvalidRequest")


def access_denied(message: str) -> Refused:
    return _err("403", "Unauthorized", message, "AccessDenied")


def no_such_key() -> Refused:
    return _err("404", "not_found", "Object not found", "NoSuchKey")


def no_such_bucket() -> Refused:
    return _err("404", "Bucket not found", "Bucket not found", "NoSuchBucket")


def duplicate() -> Refused:
    return _err("409", "Duplicate", "The resource already exists", "ResourceAlreadyExists")


def no_content(message: str = "No content provided") -> Refused:
    return _err("400", "InvalidRequest", message, "InvalidRequest")


def _validate(model: type[M], where: str, data: Any) -> M:
    """``model`` from ``data`` or the 400 the server's schema validation gives."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "/".join(str(part) for part in first["loc"])
        raise invalid(f"{where}{'/' + loc if loc else ''} {first['msg']}") from None


@dataclass
class StoredFile:
    data: bytes
    content_type: str
    metadata: dict[str, Any] | None  # the user metadata
    cache_control: str = "no-cache"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def etag(self) -> str:
        return f'"{hashlib.md5(self.data, usedforsecurity=False).hexdigest()}"'


@dataclass
class Call:
    """What a handler gets once the request passed validation."""

    request: Request
    bucket: str
    key: str
    authenticated: bool
    body: Any = None
    query: Any = None


Handler = Callable[[Call], Awaitable[Response]]


@dataclass
class FakeSupabaseStorage:
    service_key: str
    buckets: set[str] = field(default_factory=lambda: set(BUCKETS))
    public_buckets: set[str] = field(default_factory=lambda: {"lora-models"})
    files: dict[tuple[str, str], StoredFile] = field(default_factory=dict)
    signed: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # token: bucket, key, exp
    requests: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, ErrorBody]] = field(default_factory=list)

    def app(self) -> Starlette:
        legacy_info = "/object/info/{bucketName}/{*}"  # #/paths/~1object~1info~1{bucketName}~1{*}/get
        legacy_get = "/object/{bucketName}/{*}"  # #/paths/~1object~1{bucketName}~1{*}/get
        # Most specific first: /object/{bucketName}/{*} would also match /object/info/...
        routes = [
            self._op(Op.INFO, self._info, query=InfoQuery),
            self._route("GET", legacy_info, self._info, query=InfoQuery, anon_allowed=True),
            self._op(Op.PUBLIC_DOWNLOAD, self._public, query=DownloadQuery),
            self._op(Op.DOWNLOAD, self._download, query=DownloadQuery),
            self._op(Op.SIGN, self._sign, body=SignRequest),
            self._op(Op.SIGNED_DOWNLOAD, self._signed_download, query=SignedDownloadQuery),
            self._op(Op.LIST, self._list, body=ListRequest),
            self._op(Op.UPLOAD, self._upload),
            self._route("GET", legacy_get, self._download, query=DownloadQuery, anon_allowed=True),
            self._op(Op.REMOVE, self._remove, body=RemoveRequest),
        ]
        return Starlette(routes=routes, exception_handlers={404: self._no_route, 405: self._no_route})

    # -- the checks every operation goes through -------------------------------------------------

    def _op(
        self,
        op: Op,
        handler: Handler,
        *,
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
    ) -> Route:
        return self._route(op.method, op.template, handler, secured=op.secured, query=query, body=body)

    def _route(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        secured: bool = True,
        anon_allowed: bool = False,
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
    ) -> Route:
        """``anon_allowed``: the server's ``allowInvalidJwt`` (no def-0 header schema either): a
        missing or bad token makes the caller anon instead of refusing the request."""
        path = BASE + template.replace("{*}", "{key:path}")

        async def endpoint(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            try:
                call = await self._check(request, secured and not anon_allowed, query, body)
                return await handler(call)
            except Refused as refusal:
                self.refused.append((request.method, request.url.path, refusal.body))
                return JSONResponse(refusal.body.model_dump(mode="json"), status_code=refusal.http_status)

        return Route(path, endpoint, methods=[method])

    async def _check(
        self,
        request: Request,
        token_required: bool,
        query: type[BaseModel] | None,
        body: type[BaseModel] | None,
    ) -> Call:
        params = dict(request.path_params)
        if "key" in params:
            path = _validate(ObjectPath, "params", {"bucketName": params["bucketName"], "*": params["key"]})
            bucket, key = path.bucketName, path.key
        else:
            bucket, key = _validate(BucketPath, "params", params).bucketName, ""
        # Fastify's order: params, body, querystring, headers.
        parsed_body = await self._json_body(request, body) if body else None
        parsed_query = _validate(query, "querystring", dict(request.query_params)) if query else None
        if token_required:  # def-0: the header is in the route's schema, so its absence is a 400
            _validate(AuthHeaders, "headers", dict(request.headers))
        # Only now the JWT (the server checks it in preHandler, after validation).
        authorization = request.headers.get("authorization", "")
        authenticated = authorization == f"Bearer {self.service_key}"
        if token_required and not authenticated:
            raise access_denied("invalid signature" if authorization else "jwt must be provided")
        return Call(request, bucket, key, authenticated, parsed_body, parsed_query)

    @staticmethod
    async def _json_body(request: Request, model: type[BaseModel]) -> BaseModel:
        # requestBody: required, content application/json only.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Refused(
                ErrorBody(
                    statusCode="415",
                    error="invalid_mime_type",
                    message="Invalid Content-Type header",
                    code="InvalidMimeType",
                )
            )
        raw = await request.body()
        try:
            json.loads(raw)
        except ValueError:
            raise invalid("Body is not valid JSON") from None
        return _validate(model, "body", raw)

    async def _no_route(self, request: Request, exc: Exception) -> Response:
        # The server's not-found handler: the one error that is a real HTTP 404.
        assert isinstance(exc, HTTPException)
        body = ErrorBody(
            statusCode="404",
            error="Not Found",
            code="InvalidRequest",
            message=f"Route {request.method}:{request.url.path} not found",
        )
        self.refused.append((request.method, request.url.path, body))
        return JSONResponse(body.model_dump(mode="json"), status_code=404)

    def _bucket(self, bucket: str) -> str:
        if bucket not in self.buckets:
            raise no_such_bucket()
        return bucket

    def _object(self, bucket: str, key: str) -> StoredFile:
        stored = self.files.get((self._bucket(bucket), key))
        if stored is None:
            raise no_such_key()
        return stored

    def _visible(self, call: Call) -> None:
        # Legacy routes (allowInvalidJwt): without a valid JWT the caller is anon, who sees
        # nothing in a private bucket, so a bad key reads as "Bucket not found".
        if not call.authenticated and call.bucket not in self.public_buckets:
            raise no_such_bucket()

    @staticmethod
    def _asset(stored: StoredFile, key: str, query: DownloadQuery | None) -> Response:
        headers = {"etag": stored.etag, "cache-control": stored.cache_control}
        if query is not None and query.download is not None:
            name = query.download or key.rsplit("/", 1)[-1]
            headers["content-disposition"] = f"attachment; filename={quote(name)}"
        return Response(stored.data, media_type=stored.content_type, headers=headers)

    # -- operations ------------------------------------------------------------------------------

    async def _upload(self, call: Call) -> Response:
        self._bucket(call.bucket)
        form = await self._upload_form(call.request, call.key)
        target = (call.bucket, call.key)
        if target in self.files and call.request.headers.get("x-upsert") != "true":
            raise duplicate()
        self.files[target] = StoredFile(
            form.file.data,
            form.mime_type,
            form.user_metadata,
            f"max-age={form.cacheControl}" if form.cacheControl else "no-cache",
        )
        answer = UploadResponse(Key=f"{call.bucket}/{call.key}", Id=self.files[target].id)
        return JSONResponse(answer.model_dump(mode="json", exclude_none=True))

    @staticmethod
    async def _upload_form(request: Request, key: str) -> UploadForm:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            # A raw body is the file; metadata comes base64-encoded in x-metadata.
            data = await request.body()
            metadata = request.headers.get("x-metadata")
            if metadata is not None:
                try:
                    metadata = base64.b64decode(metadata).decode()
                except ValueError:
                    metadata = None
            part = FilePart(filename=key.rsplit("/", 1)[-1], content_type=content_type or None, data=data)
            given = {"file": part, "metadata": metadata, "cacheControl": request.headers.get("cache-control")}
            return _validate(UploadForm, "body", {k: v for k, v in given.items() if v is not None})
        fields: dict[str, Any] = {}
        seen = 0
        try:
            async with request.form() as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):  # fields after the file part are never read
                        part = FilePart(
                            filename=value.filename or "",
                            content_type=value.content_type,
                            data=await value.read(),
                        )
                        fields["file"] = part
                        break
                    seen += 1
                    if seen > UploadForm.MAX_FIELDS:
                        raise no_content("reach fields limit")
                    fields.setdefault(name, value)
        except Refused:
            raise
        except Exception as exc:  # a malformed multipart body
            raise no_content(str(exc)) from None
        if "file" not in fields:
            raise no_content()
        return _validate(UploadForm, "body", fields)

    async def _info(self, call: Call) -> Response:
        self._visible(call)
        stored = self._object(call.bucket, call.key)
        info = ObjectInfo(
            id=stored.id,
            name=call.key,
            version=stored.id,
            bucket_id=call.bucket,
            size=len(stored.data),
            content_type=stored.content_type,
            cache_control=stored.cache_control,
            etag=stored.etag,
            metadata=stored.metadata,
            last_modified=stored.created_at,
            created_at=stored.created_at,
        )
        return JSONResponse(info.model_dump(mode="json", exclude_unset=True))

    async def _download(self, call: Call) -> Response:
        self._visible(call)
        return self._asset(self._object(call.bucket, call.key), call.key, call.query)

    async def _public(self, call: Call) -> Response:
        if call.bucket not in self.public_buckets:
            raise no_such_bucket()
        return self._asset(self._object(call.bucket, call.key), call.key, call.query)

    async def _sign(self, call: Call) -> Response:
        self._object(call.bucket, call.key)  # signing a missing object is a 404
        assert isinstance(call.body, SignRequest)
        token = secrets.token_urlsafe(16)
        self.signed[token] = (call.bucket, call.key, time.time() + call.body.expiresIn)
        url = f"/object/sign/{quote(call.bucket, safe='')}/{quote(call.key)}?token={token}"
        return JSONResponse(SignResponse(signedURL=url).model_dump(mode="json"))

    async def _signed_download(self, call: Call) -> Response:
        assert isinstance(call.query, SignedDownloadQuery)
        bucket, key, expires = self.signed.get(call.query.token, ("", "", 0.0))
        if (bucket, key) != (call.bucket, call.key):
            raise _err("400", "InvalidSignature", "Invalid signature", "InvalidSignature")
        if time.time() > expires:
            raise _err("400", "ExpiredToken", "The provided token has expired.", "ExpiredToken")
        return self._asset(self._object(bucket, key), key, call.query)

    async def _list(self, call: Call) -> Response:
        assert isinstance(call.body, ListRequest)
        request = call.body
        # The server treats the prefix as a folder: "l1" and "l1/" list the same thing.
        folder = (
            request.prefix if not request.prefix or request.prefix.endswith("/") else request.prefix + "/"
        )
        entries: dict[str, ObjectEntry] = {}
        for (bucket, name), stored in self.files.items():
            if bucket != call.bucket or not name.startswith(folder):
                continue
            head, _, tail = name[len(folder) :].partition("/")
            if tail:
                entries.setdefault(
                    head,
                    ObjectEntry(
                        name=head,
                        id=None,
                        updated_at=None,
                        created_at=None,
                        last_accessed_at=None,
                        metadata=None,
                    ),
                )
            else:
                entries[head] = ObjectEntry(
                    name=head,
                    id=stored.id,
                    updated_at=stored.created_at,
                    created_at=stored.created_at,
                    last_accessed_at=stored.created_at,
                    metadata={
                        "size": len(stored.data),
                        "mimetype": stored.content_type,
                        "eTag": stored.etag,
                        "cacheControl": stored.cache_control,
                    },
                )
        if request.search:
            entries = {k: v for k, v in entries.items() if k.lower().startswith(request.search.lower())}
        sort = request.sortBy
        column = sort.column if sort else "name"
        ordered = sorted(
            entries.values(),
            key=lambda e: (getattr(e, column) or "", e.name),
            reverse=bool(sort and sort.order == "desc"),
        )
        offset, limit = request.offset or 0, request.limit or 100
        page = ordered[offset : offset + limit]
        return JSONResponse(OBJECT_LIST.dump_python(page, mode="json", exclude_unset=True))

    async def _remove(self, call: Call) -> Response:
        assert isinstance(call.body, RemoveRequest)
        removed = []
        for key in call.body.prefixes:
            stored = self.files.pop((call.bucket, key), None)
            if stored is not None:
                removed.append(
                    ObjectEntry(
                        name=key, bucket_id=call.bucket, id=stored.id, metadata={"size": len(stored.data)}
                    )
                )
        return JSONResponse(OBJECT_LIST.dump_python(removed, mode="json", exclude_unset=True))
