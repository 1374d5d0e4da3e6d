"""Reading multipart/form-data bodies: the form within limits, the create fields, and the
uploaded images, each checked before anything is created (a 400 names the bad file)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException

from api.errors import ApiError, invalid_request
from api.schemas import CreateLoraRequest
from loraflow.contracts import limits
from loraflow.domain import images
from loraflow.domain.images import CheckedImage
from loraflow.errors import DatasetRejected, ImageRejected
from loraflow.settings import Settings

__all__ = ["MULTIPART", "Upload", "create_request", "media_type", "read_form", "read_images"]

MULTIPART = "multipart/form-data"
#: An uploaded image: what the check found, and its bytes.
Upload = tuple[CheckedImage, bytes]


def media_type(request: Request) -> str:
    """The request's content type without parameters, lower-cased ("" when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(
            max_files=limits.MAX_IMAGES + 1, max_fields=20, max_part_size=images.MAX_BYTES + 1
        )
    except (MultiPartException, ValueError) as exc:
        raise ApiError(400, "invalid_request", f"malformed multipart body: {exc}") from exc


def create_request(form: FormData) -> CreateLoraRequest:
    """The create fields of a multipart body (``training_params`` as JSON text)."""
    fields: dict[str, Any] = {k: form.get(k) for k in ("name", "description") if isinstance(form.get(k), str)}
    raw_params = form.get("training_params")
    try:
        if isinstance(raw_params, str) and raw_params.strip():
            fields["training_params"] = json.loads(raw_params)
        return CreateLoraRequest.model_validate(fields)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_request", f"body.training_params: not JSON ({exc.msg})") from exc
    except ValidationError as exc:
        raise invalid_request(exc, "body") from exc


async def read_images(form: FormData, settings: Settings, already: int = 0) -> list[Upload]:
    """Every ``images`` file, checked one by one and then as a set with the ``already`` stored."""
    files = [f for f in form.getlist("images") if isinstance(f, UploadFile)]
    if len(form.getlist("images")) != len(files):
        raise ApiError(400, "invalid_request", "`images` must be files")
    checked = []
    for upload in files:
        data = await upload.read(images.MAX_BYTES + 1)
        try:
            image = images.inspect_image(upload.filename or "image", data, min_side=settings.min_image_side)
        except ImageRejected as exc:
            raise ApiError(400, "invalid_image", str(exc)) from exc
        checked.append((image, data))
    try:
        images.check_dataset([c for c, _ in checked], already=already)
    except DatasetRejected as exc:
        raise ApiError(400, "invalid_image", str(exc)) from exc
    return checked
