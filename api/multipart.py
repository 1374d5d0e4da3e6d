"""Reading multipart/form-data bodies: the form within limits, the create fields, and the
uploaded images, each checked (and screened, ``loraflow.ml.screening``) before anything is
created (a 400 names the bad file)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.to_thread
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
from loraflow.logging import get_logger
from loraflow.ml.screening import ImageScreen, Screening
from loraflow.settings import Settings

__all__ = ["MULTIPART", "Upload", "create_request", "media_type", "read_form", "read_images"]

log = get_logger(__name__)

MULTIPART = "multipart/form-data"
#: An uploaded image: what the check found, and its bytes.
Upload = tuple[CheckedImage, bytes]


#: The form fields images come in: ours, and the spec's name for the create request's.
IMAGE_FIELDS = ("images", "character_images")


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


def _check_and_reencode(
    filename: str, data: bytes, settings: Settings, screen: ImageScreen | None
) -> tuple[Upload, Screening | None]:
    """Checked, then re-encoded: what is stored is the image alone (no metadata, no payload
    appended after it). The sha256 stays the upload's, so a repeated upload is still seen.
    With a ``screen``, the re-encoded image (what would be stored and trained on) is screened."""
    image = images.inspect_image(filename, data, min_side=settings.min_image_side)
    stored = images.reencode_image(data, image.format)
    return (image, stored), None if screen is None else screen.screen(stored)


def _refusal(number: int, filename: str, screening: Screening) -> str:
    """Why an upload was refused, for the user: which image, what was found, what to do."""
    return (
        f"image {number} ({filename}) was refused by automatic screening (explicit content: "
        f"{screening.describe()}); nothing of this request was stored. Upload images without nudity."
    )


async def read_images(
    form: FormData,
    settings: Settings,
    limiter: anyio.CapacityLimiter,
    already: int = 0,
    screen: ImageScreen | None = None,
) -> list[Upload]:
    """Every ``images`` (or ``character_images``, the spec's name) file, checked one by one
    and then as a set with the ``already`` stored. ``limiter`` bounds how many images are
    decoded (and screened) at once across the process. An image ``screen`` flags refuses the
    whole request (400 ``image_refused``) before anything is stored or started."""
    parts = [part for field in IMAGE_FIELDS for part in form.getlist(field)]
    files = [f for f in parts if isinstance(f, UploadFile)]
    if len(parts) != len(files):
        raise ApiError(400, "invalid_request", "`images` and `character_images` must be files")
    checked = []
    for number, upload in enumerate(files, 1):
        data = await upload.read(images.MAX_BYTES + 1)
        filename = upload.filename or "image"
        try:
            # Decoding is CPU work (a 40 MP PNG takes ~0.5 s), and so is screening (~0.05 s):
            # on a thread, a few at a time, so one hostile upload never stalls every other
            # request on the event loop.
            accepted, screening = await anyio.to_thread.run_sync(
                _check_and_reencode, filename, data, settings, screen, limiter=limiter
            )
        except ImageRejected as exc:
            raise ApiError(400, "invalid_image", str(exc)) from exc
        if screening is not None and screening.flagged:
            log.info("image_refused", image=number, findings=screening.describe())
            raise ApiError(400, "image_refused", _refusal(number, filename, screening))
        checked.append(accepted)
    try:
        images.check_dataset([c for c, _ in checked], already=already)
    except DatasetRejected as exc:
        raise ApiError(400, "invalid_image", str(exc)) from exc
    return checked
