"""The part of Supabase Storage's HTTP API that loraflow uses, as typed models.

The contract is the vendor's OpenAPI document (``supabase/storage``'s published ``api.json``, the
copy in ``shared/vendor-apis/supabase-storage-openapi.json``). Every model and rule below cites
the JSON pointer it was taken from; ``OP`` stands for the operation's own pointer (see ``Op``).
Paths are relative to ``{SUPABASE_URL}/storage/v1``.

Conventions that follow the JSON Schema rules rather than Python habit:

* Request models are strict: ``"3600"`` is not an integer (the document types ``expiresIn`` as
  ``integer``), and a property the document does not mark nullable may be left out but not sent
  as ``null``.
* ``extra="forbid"`` only where the document says ``additionalProperties: false``; elsewhere
  unknown properties are allowed, as the document allows them.
* Errors: every operation's ``4XX`` answer is ``#/components/schemas/def-1``. The vendor's docs add
  that every non-500 error travels as HTTP 400 with the real code in the body's ``statusCode``,
  so the HTTP status tells a client nothing; ``ErrorBody`` does.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

__all__ = [
    "OBJECT_LIST",
    "AuthHeaders",
    "BucketPath",
    "DownloadQuery",
    "ErrorBody",
    "FilePart",
    "InfoQuery",
    "ListRequest",
    "ObjectEntry",
    "ObjectInfo",
    "ObjectPath",
    "Op",
    "RemoveRequest",
    "SignRequest",
    "SignResponse",
    "SignedDownloadQuery",
    "UploadForm",
    "UploadResponse",
]


class Op(Enum):
    """The operations loraflow calls: method, path template, and whether the operation carries
    ``security: [{bearerAuth: []}]`` (``#/components/securitySchemes/bearerAuth``)."""

    UPLOAD = ("POST", "/object/{bucketName}/{*}", True)
    # The "authenticated" variants, not GET /object/{bucketName}/{*} and GET /object/info/...:
    # the vendor's server lets those two through with an invalid JWT (as the anon role), so a
    # bad service key there looks like a missing bucket or object instead of an auth failure.
    INFO = ("GET", "/object/info/authenticated/{bucketName}/{*}", True)
    DOWNLOAD = ("GET", "/object/authenticated/{bucketName}/{*}", True)
    PUBLIC_DOWNLOAD = ("GET", "/object/public/{bucketName}/{*}", False)
    SIGN = ("POST", "/object/sign/{bucketName}/{*}", True)
    SIGNED_DOWNLOAD = ("GET", "/object/sign/{bucketName}/{*}", False)
    LIST = ("POST", "/object/list/{bucketName}", True)
    REMOVE = ("DELETE", "/object/{bucketName}", True)

    def __init__(self, method: str, template: str, secured: bool) -> None:
        self.method = method
        self.template = template
        self.secured = secured

    @property
    def pointer(self) -> str:
        """This operation's JSON pointer in the document (RFC 6901 escaping)."""
        escaped = self.template.replace("~", "~0").replace("/", "~1")
        return f"#/paths/{escaped}/{self.method.lower()}"

    def path(self, bucket: str, key: str | None = None) -> str:
        """The request path; each key segment is percent-encoded, its slashes kept."""
        path = self.template.replace("{bucketName}", quote(bucket, safe=""))
        if "{*}" in path:
            if key is None:
                raise ValueError(f"{self.name} needs an object key")
            path = path.replace("{*}", quote(key, safe="/"))
        return path


class _Model(BaseModel):
    """Strict JSON Schema semantics (see the module docstring)."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)
    # Properties whose schema admits null (``anyOf [.., {type: null}]`` or ``type: [null, ..]``).
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _null_only_where_nullable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                if key in data and data[key] is None and key not in cls.nullable:
                    raise ValueError(f"{key} must not be null")
        return data


# -- errors and auth -----------------------------------------------------------------------------


class ErrorBody(_Model):
    """``#/components/schemas/def-1`` (errorSchema): all three required, all strings. No
    ``additionalProperties: false``, so extras pass (the server also sends a ``code``)."""

    statusCode: str
    error: str
    message: str

    @property
    def is_object_not_found(self) -> bool:
        # A missing object is statusCode "404" with error "not_found"; a missing *bucket* is a
        # "404" too ("Bucket not found"), but that is a deployment fault, not a missing key.
        return self.statusCode == "404" and self.error == "not_found"

    @property
    def is_duplicate(self) -> bool:
        # Upload without upsert onto an existing key: statusCode "409" (error "Duplicate").
        return self.statusCode == "409"


class AuthHeaders(_Model):
    """``#/components/schemas/def-0`` (authSchema): the ``authorization`` header is required on
    the secured operations; its value is ``Bearer <jwt>`` (``#/components/securitySchemes/
    bearerAuth``, ``scheme: bearer``). Other headers are allowed."""

    authorization: str


# -- path and query parameters -------------------------------------------------------------------


class BucketPath(_Model):
    """``OP/parameters``: ``bucketName`` (in: path, string, required), for LIST and REMOVE."""

    bucketName: str


class ObjectPath(BucketPath):
    """``OP/parameters``: ``bucketName`` and ``*`` (in: path, string, required) for the
    operations on one object."""

    key: str = Field(alias="*")


class DownloadQuery(_Model):
    """``#/paths/~1object~1authenticated~1{bucketName}~1{*}/get/parameters`` (and the public
    variant's): optional ``download`` (string): serve as an attachment."""

    model_config = ConfigDict(strict=False)  # query values are strings on the wire
    download: str | None = None


class SignedDownloadQuery(DownloadQuery):
    """``#/paths/~1object~1sign~1{bucketName}~1{*}/get/parameters``: ``token`` is required."""

    token: str


class InfoQuery(_Model):
    """``#/paths/~1object~1info~1authenticated~1{bucketName}~1{*}/get/parameters``: the
    optional image transformation (height/width >= 0, resize, format, quality 20..100)."""

    model_config = ConfigDict(strict=False)  # query values are strings on the wire
    height: int | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, ge=0)
    resize: Literal["cover", "contain", "fill"] | None = None
    format: Literal["origin", "avif", "webp"] | None = None
    quality: int | None = Field(default=None, ge=20, le=100)


# -- upload --------------------------------------------------------------------------------------


class FilePart(_Model):
    """The multipart part that carries the bytes (a part with a filename)."""

    filename: str
    content_type: str | None = None
    data: bytes

    nullable = frozenset({"content_type"})


class UploadForm(_Model):
    """The upload's multipart/form-data body.

    ``#/paths/~1object~1{bucketName}~1{*}/post`` declares no requestBody, so these rules are the
    vendor server's (supabase/storage ``src/storage/uploader.ts``, ``fileUploadFromRequest``):
    exactly one file part is required (none: 400 "No content provided"); the fields it reads are
    ``cacheControl`` (seconds), ``contentType`` (else the file part's type) and ``metadata`` (or
    ``userMetadata``), a JSON object stored as the object's user metadata. Only fields that come
    *before* the file part are seen (fastify-multipart streams the file), and at most 10 fields.
    Other fields are ignored, hence ``extra="allow"``. ``x-upsert: true`` (a header) allows an
    overwrite; anything else refuses one with a 409.
    """

    file: FilePart
    cacheControl: str | None = None
    contentType: str | None = None
    metadata: str | None = None
    userMetadata: str | None = None

    MAX_FIELDS: ClassVar[int] = 10

    @property
    def user_metadata(self) -> dict[str, Any] | None:
        """What the server stores: unparseable metadata is dropped silently, not refused."""
        raw = self.metadata if self.metadata is not None else self.userMetadata
        if raw is None:
            return None
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def mime_type(self) -> str:
        return self.contentType or self.file.content_type or "application/octet-stream"


class UploadResponse(_Model):
    """``#/paths/~1object~1{bucketName}~1{*}/post/responses/200/content/application~1json/schema``:
    ``Key`` (``{bucket}/{path}``) required, ``Id`` optional."""

    Key: str
    Id: str | None = None


# -- object info ---------------------------------------------------------------------------------


class ObjectInfo(_Model):
    """The body of ``#/paths/~1object~1info~1authenticated~1{bucketName}~1{*}/get`` on success.

    The document lists only the ``4XX`` answer for this operation, so nothing here is promised by
    it: every property is optional and nullable, and unknown ones are allowed. The names are the
    vendor server's (``src/storage/renderer/info.ts``): note that ``metadata`` here is the
    object's *user* metadata (what the upload's ``metadata`` field set), and ``size`` is the
    stored size.
    """

    id: str | None = None
    name: str | None = None
    version: str | None = None
    bucket_id: str | None = None
    size: int | None = None
    content_type: str | None = None
    cache_control: str | None = None
    etag: str | None = None
    metadata: dict[str, Any] | None = None
    last_modified: str | None = None
    created_at: str | None = None

    nullable = frozenset(
        {"id", "name", "version", "bucket_id", "size", "content_type", "cache_control", "etag"}
        | {"metadata", "last_modified", "created_at"}
    )


# -- list and remove -----------------------------------------------------------------------------


class SortBy(_Model):
    """``#/paths/~1object~1list~1{bucketName}/post/requestBody/content/application~1json/schema/
    properties/sortBy``: ``column`` required."""

    column: Literal["name", "updated_at", "created_at", "last_accessed_at"]
    order: Literal["asc", "desc"] | None = None


class ListRequest(_Model):
    """``#/paths/~1object~1list~1{bucketName}/post/requestBody/content/application~1json/schema``:
    ``prefix`` required (the folder to list, not a key prefix); ``limit`` >= 1, ``offset`` >= 0.
    The server's defaults when left out: limit 100, offset 0, sorted by name."""

    prefix: str
    limit: int | None = Field(default=None, ge=1)
    offset: int | None = Field(default=None, ge=0)
    sortBy: SortBy | None = None
    search: str | None = None


class BucketEntry(_Model):
    """``.../items/properties/buckets`` of the list and remove answers: ``additionalProperties:
    false``, ``id`` and ``name`` required."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    owner: str | None = None
    owner_id: str | None = None
    public: bool | None = None
    type: Literal["STANDARD", "ANALYTICS"] | None = None
    file_size_limit: int | None = None
    allowed_mime_types: list[str] | None = None
    created_at: str | None = None
    updated_at: str | None = None

    nullable = frozenset({"file_size_limit", "allowed_mime_types"})


class ObjectEntry(_Model):
    """objectSchema, the items of
    ``#/paths/~1object~1list~1{bucketName}/post/responses/200/content/application~1json/schema``
    (and of ``#/paths/~1object~1{bucketName}/delete/responses/200/...``): ``additionalProperties:
    false``, only ``name`` required. A folder in a listing is an entry whose ``id`` is null."""

    model_config = ConfigDict(extra="forbid")
    name: str
    bucket_id: str | None = None
    owner: str | None = None
    owner_id: str | None = None
    version: str | None = None
    id: str | None = None
    updated_at: str | None = None
    created_at: str | None = None
    last_accessed_at: str | None = None
    metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None
    buckets: BucketEntry | None = None

    nullable = frozenset({"id", "updated_at", "created_at", "last_accessed_at", "metadata", "user_metadata"})

    @property
    def is_folder(self) -> bool:
        return self.id is None


OBJECT_LIST: TypeAdapter[list[ObjectEntry]] = TypeAdapter(list[ObjectEntry])


class RemoveRequest(_Model):
    """``#/paths/~1object~1{bucketName}/delete/requestBody/content/application~1json/schema``:
    ``prefixes`` (the keys to remove) required, at least one item. The answer is the list of
    removed objects (``OBJECT_LIST``); keys that did not exist are simply absent from it."""

    prefixes: list[str] = Field(min_length=1)


# -- signed URLs ---------------------------------------------------------------------------------


class Transform(_Model):
    """``#/paths/~1object~1sign~1{bucketName}~1{*}/post/requestBody/content/application~1json/
    schema/properties/transform``."""

    height: int | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, ge=0)
    resize: Literal["cover", "contain", "fill"] | None = None
    format: Literal["origin", "avif", "webp"] | None = None
    quality: int | None = Field(default=None, ge=20, le=100)


class SignRequest(_Model):
    """``#/paths/~1object~1sign~1{bucketName}~1{*}/post/requestBody/content/application~1json/
    schema``: ``expiresIn`` (seconds) required, an *integer* >= 1 (storage3 sends a string)."""

    expiresIn: int = Field(ge=1)
    transform: Transform | None = None


class SignResponse(_Model):
    """``#/paths/~1object~1sign~1{bucketName}~1{*}/post/responses/200/content/application~1json/
    schema``: ``signedURL`` required, a path relative to ``/storage/v1``
    (``/object/sign/{bucket}/{key}?token=...``)."""

    signedURL: str
