"""Automatic screening: does an image show explicit content? NudeNet's detector decides.

NudeNet (PyPI ``nudenet``, MIT) is a YOLOv8n detector of 18 body-part labels; its wheel ships
the weights (``320n.onnx``, 12 MB), and it runs on onnxruntime on the CPU, offline. An image is
*flagged* when the detector finds any of the blocked labels with a score of at least the
threshold. Both are settings:

* ``LORAFLOW_SCREENING_LABELS``, default ``EXPLICIT_LABELS``: exposed genitalia (female, male),
  female breasts, buttocks and anus. The covered variants, faces, feet, bellies, armpits and
  male chests are not blocked: they are what ordinary character pictures show.
* ``LORAFLOW_SCREENING_THRESHOLD``, default ``DEFAULT_THRESHOLD`` (0.6). NudeNet documents no
  threshold of its own: it reports every detection from 0.2 on, and the explicit detections its
  README shows of a nude photo score 0.68-0.80 (FEMALE_BREAST_EXPOSED 0.80 and 0.77,
  FEMALE_GENITALIA_EXPOSED 0.68). 0.6 keeps those and leaves out the low-confidence band, where
  the one false detection we saw lies (skimage's coffee-cup photo, fed in the wrong channel
  order, gets BUTTOCKS_EXPOSED 0.30; in the right order nothing at all).

Where it runs: the API screens every uploaded training image (a flagged one refuses the
request, ``image_refused``); ``prepare_dataset`` screens the dataset again before any machine
is rented (images that did not come through the API: a video job's references); validation
screens every generated image, and a flagged checkpoint image hides the LoRA pending review.

The detector is loaded once per process, on first use, behind a lock; onnxruntime's ``run`` is
safe from several threads at once, so the API's image threads and the worker's activity
threads share it. Its session uses ``default_threads()`` intra-op threads (half the cores),
like torch elsewhere in loraflow. Importing this module is cheap: numpy, PIL and onnxruntime
are imported on first use.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraflow.contracts.lora_training import Screening, ScreeningFinding
from loraflow.errors import LoraflowError
from loraflow.threads import default_threads

if TYPE_CHECKING:
    from PIL.Image import Image

    from loraflow.settings import Settings

__all__ = [
    "DEFAULT_THRESHOLD",
    "EXPLICIT_LABELS",
    "LABELS",
    "ImageScreen",
    "Screening",
    "ScreeningFinding",
    "ScreeningUnavailable",
]

#: Every label NudeNet 3.4's detector reports, in its own order (``nudenet.nudenet.__labels``).
LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
#: The labels that count as explicit by default (``LORAFLOW_SCREENING_LABELS``).
EXPLICIT_LABELS = (
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)
#: A blocked label's score at or over this flags the image (``LORAFLOW_SCREENING_THRESHOLD``).
DEFAULT_THRESHOLD = 0.6
#: Images are screened at most this large on their longer side (4x the detector's 320 px input,
#: which it reaches by one bilinear resize): a 40 MP upload then costs a 1280 px array, not
#: 200 MB of padded copies, and the detector sees the same 320 px picture.
_MAX_SIDE = 1280
_MODEL_FILE = "320n.onnx"


class ScreeningUnavailable(LoraflowError):
    """Screening is on but NudeNet (or its model file) is missing: install loraflow's core
    dependencies, or set LORAFLOW_SCREENING=false."""


def _model_path() -> Path:
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise ScreeningUnavailable(
            "automatic screening needs NudeNet: pip install nudenet (or set LORAFLOW_SCREENING=false)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _MODEL_FILE
    if not path.is_file():
        raise ScreeningUnavailable(f"NudeNet's model file {path} is missing: reinstall nudenet")
    return path


_detector_lock = threading.Lock()
_detector: Any = None


def _shared_detector() -> Any:
    """The process's one ``nudenet.NudeDetector``, made on first use. NudeDetector takes no
    session options, so its session is made here (the package's own model file, CPU only,
    ``default_threads()`` intra-op threads) and the rest is NudeNet's: its pre- and
    post-processing, labels and non-maximum suppression."""
    global _detector
    with _detector_lock:
        if _detector is None:
            import onnxruntime
            from nudenet import NudeDetector

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = default_threads()
            options.inter_op_num_threads = 1
            detector = NudeDetector.__new__(NudeDetector)
            detector.onnx_session = onnxruntime.InferenceSession(
                str(_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
            )
            detector.input_name = detector.onnx_session.get_inputs()[0].name
            detector.input_width = detector.input_height = 320  # the 320n model's resolution
            _detector = detector
        return _detector


class ImageScreen:
    """Screens images with NudeNet's detector against a threshold and a set of blocked labels.

    Cheap to make (the detector loads on the first ``screen``, once per process, shared by every
    ``ImageScreen``); checks that NudeNet and its model file are installed at once, so a process
    with screening on but no NudeNet fails at start, not at its first upload."""

    def __init__(
        self, *, threshold: float = DEFAULT_THRESHOLD, labels: Iterable[str] = EXPLICIT_LABELS
    ) -> None:
        labels = frozenset(labels)
        unknown = sorted(labels - set(LABELS))
        if unknown:
            raise ValueError(f"unknown NudeNet labels {unknown}; known: {', '.join(LABELS)}")
        if not 0 < threshold <= 1:
            raise ValueError(f"the screening threshold must be in (0, 1]; got {threshold}")
        self.threshold = threshold
        self.labels = labels
        _model_path()

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageScreen | None:
        """The configured screen; None when ``LORAFLOW_SCREENING`` is off."""
        if not settings.screening:
            return None
        return cls(threshold=settings.screening_threshold, labels=settings.screening_labels)

    def detect(self, image: bytes | Image) -> list[ScreeningFinding]:
        """Every detection (any label, from NudeNet's 0.2 on), highest score first."""
        found = _shared_detector().detect(_bgr(image))
        return sorted(
            (ScreeningFinding(d["class"], round(float(d["score"]), 4)) for d in found),
            key=lambda f: -f.score,
        )

    def screen(self, image: bytes | Image) -> Screening:
        """``image`` (encoded bytes, or a PIL image) screened: flagged when a blocked label scores
        at least the threshold; its findings are those detections."""
        findings = [f for f in self.detect(image) if f.label in self.labels and f.score >= self.threshold]
        return Screening(flagged=bool(findings), findings=findings)


def _bgr(image: bytes | Image) -> Any:
    """The pixels as NudeNet reads a file (``cv2.imread``: 8-bit BGR, no alpha), with EXIF
    orientation applied, at most ``_MAX_SIDE`` on the longer side. The detector's scores depend
    on the channel order: this is the order of its documented use (a path or encoded bytes)."""
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageOps

    if isinstance(image, bytes | bytearray):
        with PILImage.open(io.BytesIO(image)) as opened:
            # A JPEG decodes straight at 1/2, 1/4 or 1/8 scale when that is still at least
            # _MAX_SIDE (libjpeg's DCT scaling): a 12 MP phone photo costs a quarter of a decode.
            opened.draft("RGB", (_MAX_SIDE, _MAX_SIDE))
            rgb = ImageOps.exif_transpose(opened).convert("RGB")
    else:
        rgb = image.convert("RGB")
    if max(rgb.size) > _MAX_SIDE:  # rgb is a copy either way: shrinking it in place is safe
        rgb.thumbnail((_MAX_SIDE, _MAX_SIDE), PILImage.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
