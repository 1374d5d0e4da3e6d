"""Image checks: every bad file is refused with its name and a reason a user can act on."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from loraflow.domain import images
from loraflow.domain.images import check_dataset, inspect_image, normalise_image
from loraflow.errors import DatasetRejected, ImageRejected


def _encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def _photo(w: int = 400, h: int = 300, colour: tuple[int, int, int] = (200, 50, 50)) -> Image.Image:
    return Image.new("RGB", (w, h), colour)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepts_jpeg_png_webp(fmt: str) -> None:
    checked = inspect_image("a.bin", _encode(_photo(), fmt))
    assert (checked.format, checked.width, checked.height) == (fmt, 400, 300)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, I am a text file", "not an image"),
        (_encode(_photo(), "GIF"), "GIF images are not accepted"),
        (_encode(_photo(), "PNG")[:-400], "damaged or truncated"),
        (_encode(_photo(), "JPEG")[:600], "damaged or truncated"),
        (_encode(_photo(200, 120), "PNG"), "too small"),
        (_encode(Image.new("1", (8000, 8000)), "PNG"), "decompression bomb"),
    ],
    ids=["empty", "text", "gif", "truncated-png", "truncated-jpeg", "small", "bomb"],
)
def test_rejections_name_the_file_and_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as info:
        inspect_image("holiday.png", data)
    assert info.value.filename == "holiday.png"
    assert reason in info.value.reason


def test_bomb_is_caught_before_decoding_it() -> None:
    bomb = _encode(Image.new("1", (8000, 8000)), "PNG")
    assert len(bomb) < 100_000  # tiny on disk, 64 MP decoded


def test_too_big_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    with pytest.raises(ImageRejected, match="limit is 1000"):
        inspect_image("big.png", _encode(_photo(), "PNG") + b"\0" * 1000)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°
    data = _encode(_photo(400, 300), "JPEG", exif=exif)
    checked = inspect_image("rotated.jpg", data)
    assert (checked.width, checked.height) == (300, 400)
    with Image.open(io.BytesIO(normalise_image(data))) as normalised:
        assert normalised.size == (300, 400) and normalised.format == "PNG" and normalised.mode == "RGB"


def test_dataset_limits_and_duplicates() -> None:
    def checked(i: int) -> images.CheckedImage:
        return inspect_image(f"{i}.png", _encode(_photo(colour=(i, i, i)), "PNG"))

    check_dataset([checked(i) for i in range(10)])
    with pytest.raises(DatasetRejected, match="at most 10"):
        check_dataset([checked(i) for i in range(11)])
    with pytest.raises(DatasetRejected, match="at most 10"):
        check_dataset([checked(i) for i in range(3)], already=8)
    with pytest.raises(DatasetRejected, match="same image"):
        check_dataset([checked(1), checked(2), checked(1)])
