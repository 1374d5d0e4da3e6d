"""Automatic screening with NudeNet's real detector and model, on real photos.

Clean images pass: skimage's photos (the astronaut, the cameraman, a cat, a coffee cup, a
rocket) and the character drawings the suite trains on. For the refused case the suite ships
no explicit image: NudeNet's package has no tests and no images, and its repository's examples
are explicit photos we will not commit. So a refusal is a real detection of a label that the
configuration is told to block: the astronaut photo, in which NudeNet finds FACE_FEMALE at 0.72,
screened with ``labels=["FACE_FEMALE"]``. That is the whole pipeline on a real detection (decode,
detector, label set, threshold); what it cannot show is how well NudeNet finds explicit content,
which is NudeNet's to measure, not ours.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from loraflow.devstack.demo import draw_character
from loraflow.ml import screening
from loraflow.ml.screening import EXPLICIT_LABELS, LABELS, ImageScreen
from loraflow.settings import Settings
from loraflow.threads import default_threads

CLEAN_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket")


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)())


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def default_screen() -> ImageScreen:
    return ImageScreen()


@pytest.fixture(scope="module")
def faces_blocked() -> ImageScreen:
    """The test configuration: FACE_FEMALE counts as explicit."""
    return ImageScreen(labels=["FACE_FEMALE"])


@pytest.mark.parametrize("name", CLEAN_PHOTOS)
def test_real_photos_pass(default_screen: ImageScreen, name: str) -> None:
    screened = default_screen.screen(_png(_photo(name)))
    assert not screened.flagged and screened.findings == []
    # Not even a low-confidence detection (NudeNet reports from 0.2) of an explicit label.
    assert not [f for f in default_screen.detect(_photo(name)) if f.label in EXPLICIT_LABELS]


def test_the_training_drawings_pass(default_screen: ImageScreen, character_images: Path) -> None:
    drawings = [draw_character(i) for i in range(10)]
    drawings += [p.read_bytes() for p in sorted(character_images.iterdir())]
    for image in drawings:
        assert default_screen.screen(image) == screening.Screening(flagged=False, findings=[])
        assert not [f for f in default_screen.detect(image) if f.label in EXPLICIT_LABELS]


def test_a_blocked_label_found_at_the_threshold_flags_the_image(faces_blocked: ImageScreen) -> None:
    astronaut = _photo("astronaut")
    screened = faces_blocked.screen(_png(astronaut))
    assert screened.flagged
    [finding] = screened.findings
    assert finding.label == "FACE_FEMALE" and 0.6 <= finding.score < 0.8
    assert screened.describe() == f"FACE_FEMALE {finding.score:.2f}"
    # The same from a PIL image, and from a JPEG of it (what a phone uploads).
    assert faces_blocked.screen(astronaut).flagged
    jpeg = io.BytesIO()
    astronaut.save(jpeg, format="JPEG", quality=90)
    assert faces_blocked.screen(jpeg.getvalue()).flagged
    # A photo without the blocked label passes the same screen; a higher threshold lets it by.
    assert not faces_blocked.screen(_photo("chelsea")).flagged
    assert not ImageScreen(labels=["FACE_FEMALE"], threshold=0.9).screen(astronaut).flagged


def test_detections_are_nudenets_own(faces_blocked: ImageScreen, tmp_path: Path) -> None:
    """Our session (threads, CPU provider) and pixels (BGR, as ``cv2.imread`` reads a file)
    give what ``NudeDetector().detect(path)``, NudeNet's documented use, gives."""
    from nudenet import NudeDetector

    path = tmp_path / "astronaut.png"
    _photo("astronaut").save(path)
    theirs = [(d["class"], round(d["score"], 4)) for d in NudeDetector().detect(str(path))]
    ours = [(f.label, f.score) for f in faces_blocked.detect(path.read_bytes())]
    assert ours == theirs and ours


def test_the_detector_is_loaded_once_and_shared_between_threads(faces_blocked: ImageScreen) -> None:
    image = _png(_photo("astronaut"))
    results: list[screening.Screening] = []
    threads = [threading.Thread(target=lambda: results.append(faces_blocked.screen(image))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r == results[0] and r.flagged for r in results)
    detector = screening._shared_detector()
    ImageScreen().screen(image)  # another screen, the same detector
    assert screening._shared_detector() is detector
    options = detector.onnx_session.get_session_options()
    assert options.intra_op_num_threads == default_threads()
    assert detector.onnx_session.get_providers() == ["CPUExecutionProvider"]


def test_the_model_ships_in_the_wheel_and_runs_without_a_network() -> None:
    """A fresh process whose sockets cannot connect loads the packaged model and screens."""
    code = """
import socket, sys
def refuse(*args, **kwargs):
    raise OSError("no network in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
from skimage import data
from PIL import Image
from loraflow.ml.screening import ImageScreen, _model_path
print(_model_path().name, _model_path().stat().st_size)
print(ImageScreen(labels=["FACE_FEMALE"]).screen(Image.fromarray(data.astronaut())).flagged)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    name, size, flagged = out.stdout.split()
    assert name == "320n.onnx" and int(size) > 10_000_000 and flagged == "True"


def test_our_labels_are_nudenets() -> None:
    import nudenet.nudenet

    assert vars(nudenet.nudenet)["__labels"] == list(LABELS)
    assert set(EXPLICIT_LABELS) <= set(LABELS)


def test_a_misconfigured_screen_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown NudeNet labels"):
        ImageScreen(labels=["NUDITY"])
    with pytest.raises(ValueError, match="threshold"):
        ImageScreen(threshold=0)


def test_screening_follows_the_settings() -> None:
    assert ImageScreen.from_settings(Settings(screening=False)) is None
    screen = ImageScreen.from_settings(Settings(screening_threshold=0.7, screening_labels=["FACE_MALE"]))
    assert screen is not None and screen.threshold == 0.7 and screen.labels == {"FACE_MALE"}
    default = ImageScreen.from_settings(Settings())
    assert default is not None and default.labels == set(EXPLICIT_LABELS) and default.threshold == 0.6
