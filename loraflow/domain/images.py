"""Checking and normalising character images before they go anywhere near a GPU.

Every rejection names the file and says why, so the user can fix it: not an image, a format we
don't take, truncated, a decompression bomb, too small, too large, too few, too many.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps

from loraflow.contracts.limits import MAX_IMAGE_BYTES, MAX_IMAGES
from loraflow.errors import DatasetRejected, ImageRejected

#: Formats accepted, by what Pillow detects from the bytes (never by the file name).
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MAX_BYTES = MAX_IMAGE_BYTES
#: Far beyond any reference image; a file that decodes to more is a decompression bomb.
MAX_PIXELS = 40_000_000
MIN_SIDE = 256
#: Normalised images are at most this on their longer side (the trainer crops to 1024).
NORMALISED_MAX_SIDE = 2048


@dataclass(frozen=True)
class CheckedImage:
    filename: str
    format: str  # JPEG | PNG | WEBP
    extension: str  # jpg | png | webp
    width: int  # after EXIF orientation
    height: int
    sha256: str


def inspect_image(filename: str, data: bytes, *, min_side: int = MIN_SIDE) -> CheckedImage:
    if not data:
        raise ImageRejected(filename, "the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageRejected(filename, f"the file is {len(data)} bytes; the limit is {MAX_BYTES}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                if probe.width * probe.height > MAX_PIXELS:
                    raise ImageRejected(
                        filename, f"{probe.width}x{probe.height} pixels is too many (decompression bomb?)"
                    )
                _refuse_implausibly_small(filename, data, probe.width * probe.height)
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decodes every byte: truncated files fail here
                oriented = ImageOps.exif_transpose(image)
                width, height = oriented.size
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(filename, f"too many pixels (decompression bomb?): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageRejected(filename, "not an image (JPEG, PNG or WebP expected)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(filename, f"the image is damaged or truncated ({exc})") from exc
    if fmt not in FORMATS:
        raise ImageRejected(filename, f"{fmt} images are not accepted; use JPEG, PNG or WebP")
    if min(width, height) < min_side:
        raise ImageRejected(
            filename, f"{width}x{height} is too small; the shorter side must be ≥ {min_side}px"
        )
    return CheckedImage(filename, fmt, FORMATS[fmt], width, height, hashlib.sha256(data).hexdigest())


#: No real image packs more pixels than this into a byte: PNG's deflate tops out near 344 RGB
#: pixels a byte, and a flat JPEG costs some bits per 8x8 block. A small file whose header
#: claims far more is truncated (libjpeg pads the missing rows: 2 KB "becomes" a 36 MP grey
#: image and ~200 MB of memory), so it is refused before it is decoded.
MAX_PIXELS_PER_BYTE = 1000


def _refuse_implausibly_small(filename: str, data: bytes, pixels: int) -> None:
    if pixels > MAX_PIXELS_PER_BYTE * len(data):
        raise ImageRejected(
            filename,
            f"the image is damaged or truncated: {len(data)} bytes cannot hold {pixels} pixels",
        )


def reencode_image(data: bytes, fmt: str) -> bytes:
    """The image alone, as stored: pixels with EXIF orientation applied, in its own format; no
    metadata (EXIF, GPS, ICC comments), nothing appended after the image. Call after
    ``inspect_image`` accepted it."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        if fmt == "JPEG":
            image.convert("RGB").save(out, format="JPEG", quality=95)
        elif fmt == "WEBP":
            image.save(out, format="WEBP", lossless=True)
        else:
            image.save(out, format="PNG")
    return out.getvalue()


def check_dataset(images: Sequence[CheckedImage], *, already: int = 0) -> None:
    """``already`` counts images the LoRA has from earlier uploads."""
    total = already + len(images)
    if total > MAX_IMAGES:
        raise DatasetRejected(f"{total} images is too many; at most {MAX_IMAGES} per LoRA")
    seen: dict[str, str] = {}
    for image in images:
        if image.sha256 in seen:
            raise DatasetRejected(f"{image.filename} is the same image as {seen[image.sha256]}")
        seen[image.sha256] = image.filename


def normalise_image(data: bytes) -> bytes:
    """EXIF orientation applied, RGB, longer side at most NORMALISED_MAX_SIDE, as PNG."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
        image.thumbnail((NORMALISED_MAX_SIDE, NORMALISED_MAX_SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)
    return out.getvalue()
