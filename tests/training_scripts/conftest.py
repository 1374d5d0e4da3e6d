from __future__ import annotations

from pathlib import Path

import pytest

from training_scripts.tiny_model import ensure_tiny_sdxl


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_sdxl(tmp_path_factory.mktemp("models"))


@pytest.fixture
def character_images(tmp_path: Path) -> Path:
    """Three drawings of one small character: a face, a red shirt, on blue."""
    from PIL import Image, ImageDraw

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        im = Image.new("RGB", (96, 80), (30 + 20 * i, 110, 200))
        draw = ImageDraw.Draw(im)
        draw.ellipse((24 + 4 * i, 6, 70 + 4 * i, 50), fill=(240, 200, 150))
        draw.rectangle((30 + 4 * i, 50, 64 + 4 * i, 80), fill=(200, 30, 30))
        im.save(images / f"{i}.png")
    return images
