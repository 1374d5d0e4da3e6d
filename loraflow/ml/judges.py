"""Judges: how much does a generated image show the character of a LoRA's reference images?

Validation generates, per prompt and seed, an image with the LoRA and one with the base model
alone (the control). A judge scores each against the references; the LoRA image "shows the
character" when its score clears the judge's absolute ``floor`` and beats the control by the
judge's ``margin`` (``shows_character``). The control guards against prompts that would have
produced something alike anyway.

Three judges, best first (``pick_judge`` chooses):

* ``FaceJudge``: dlib's face recognition network, for characters with a human face. Offline,
  CPU, its weights ship in a wheel; its distance has a documented same-person threshold.
* ``EmbeddingJudge``: cosine similarity of CLIP or DINOv2 image embeddings (DreamBooth's
  CLIP-I / DINO metric), for characters without a face the detector finds. Needs a local model
  folder.
* ``PixelJudge``: pixel difference, for the tiny demo model only.

Heavy imports (dlib, numpy, torch, transformers) happen inside methods: importing this module
is cheap, and a worker that never validates never loads them.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loraflow.errors import LoraflowError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL.Image import Image

__all__ = [
    "EmbeddingJudge",
    "FaceJudge",
    "Judge",
    "JudgeUnavailable",
    "PixelJudge",
    "ReferenceSet",
    "pick_judge",
    "shows_character",
]

_JUDGE_MODEL_HINT = "set LORAFLOW_JUDGE_MODEL to a local CLIP or DINOv2 folder"


class JudgeUnavailable(LoraflowError):
    """No judge can score these references, or the configured one cannot load; the message
    says what to install or configure."""


class ReferenceSet(Protocol):
    def score(self, image: Image) -> float | None:
        """Higher is more like the references; None when there is nothing to judge (no face)."""
        ...


class Judge(Protocol):
    name: str  # "face" | "embedding" | "pixel"
    floor: float  # the LoRA image's score must be at least this
    margin: float  # ... and at least the control's score plus this

    def references(self, images: Sequence[Image]) -> ReferenceSet: ...


def shows_character(judge: Judge, lora_score: float | None, control_score: float | None) -> bool:
    """The LoRA image clears the floor and beats the control by the margin. A control with
    nothing to judge (no face) cannot be beaten, so only the floor counts then."""
    if lora_score is None or lora_score < judge.floor:
        return False
    return control_score is None or lora_score >= control_score + judge.margin


def pick_judge(
    references: Sequence[Image],
    *,
    face: FaceJudge | None,
    embedding: EmbeddingJudge | None,
    pixel: PixelJudge | None,
) -> Judge:
    """The face judge when at least half of the references show a face it finds (a character
    with a face is best judged by its face); else the embedding judge; else the pixel judge
    (the tiny demo model only)."""
    if not references:
        raise JudgeUnavailable("there are no reference images to judge against")
    why = "no face judge is configured (install loraflow[judges])"
    if face is not None:
        with_face = sum(face.has_face(image) for image in references)
        if 2 * with_face >= len(references):
            return face
        why = (
            f"only {with_face} of the {len(references)} reference images show a face the face judge"
            " finds (it needs at least half)"
        )
    if embedding is not None:
        return embedding
    if pixel is not None:
        return pixel
    raise JudgeUnavailable(f"{why} and no image-embedding judge is configured ({_JUDGE_MODEL_HINT})")


# --- faces -------------------------------------------------------------------------------------

# dlib calls two faces the same person below a descriptor distance of 0.6 (99.38% on LFW), so a
# score (1 - distance) of at least 0.4 is "the same person" in dlib's own terms.
FACE_FLOOR = 0.4
# The floor does the identity work; the margin only matters when the base model alone already
# drew someone dlib takes for the character (both under 0.6). Photos of one person lie 0.06-0.22
# apart under a flip, a crop, a few degrees of rotation or greyscale (measured on skimage's
# astronaut), so a margin near that spread would fail a good LoRA whose control happens to be a
# lookalike; 0.05 asks for a clear win over the control without needing a perfect likeness.
FACE_MARGIN = 0.05
# HOG finds faces of about 80 px; one upsampling halves that, enough for references and
# generated images alike, at a quarter of the speed (about 0.2-0.4 s for 512 x 512 on one core).
_UPSAMPLE = 1
# References are normalised to 2048 px on their longer side; detecting at that size upsampled is
# seconds per image and finds nothing a character's reference face would need: faces of 40 px
# (4% of the side) are still found at 1024.
_MAX_SIDE = 1024


def _face_model_files() -> tuple[Path, Path]:
    """The 5-point landmark model and the recognition network, from face-recognition-models.
    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which recent
    setuptools no longer ship."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise JudgeUnavailable("the face judge needs face-recognition-models: pip install 'loraflow[judges]'")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = (
        models / "shape_predictor_5_face_landmarks.dat",
        models / "dlib_face_recognition_resnet_model_v1.dat",
    )
    for file in files:
        if not file.is_file():
            raise JudgeUnavailable(
                f"the face judge's model file {file} is missing: reinstall face-recognition-models"
            )
    return files


def _rgb(image: Image, max_side: int | None = None) -> NDArray[np.uint8]:
    import numpy as np

    rgb = image.convert("RGB")
    if max_side is not None and max(rgb.size) > max_side:
        from PIL import Image as PILImage

        rgb = rgb.copy()
        rgb.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


class FaceJudge:
    """dlib's face recognition ResNet (128-d descriptors) on faces found by its HOG detector and
    aligned with its 5-point landmark model, all on the CPU. Score = 1 - the smallest distance
    between a face in the image and a reference face.

    The models load once, on first use. One lock guards loading and every call into dlib: its
    network keeps each layer's output in the object, so two threads (activities run on threads)
    must not run it at once."""

    name = "face"

    def __init__(self, *, floor: float = FACE_FLOOR, margin: float = FACE_MARGIN) -> None:
        self.floor = floor
        self.margin = margin
        self._lock = threading.Lock()
        self._models: tuple[Any, Any, Any] | None = None

    def _load(self) -> tuple[Any, Any, Any]:
        if self._models is None:
            try:
                import dlib
            except ImportError as e:
                raise JudgeUnavailable(
                    f"the face judge needs dlib: pip install 'loraflow[judges]' ({e})"
                ) from e
            landmarks, network = _face_model_files()
            self._models = (
                dlib.get_frontal_face_detector(),
                dlib.shape_predictor(str(landmarks)),
                dlib.face_recognition_model_v1(str(network)),
            )
        return self._models

    def has_face(self, image: Image) -> bool:
        pixels = _rgb(image, _MAX_SIDE)
        with self._lock:
            detector, _, _ = self._load()
            return len(detector(pixels, _UPSAMPLE)) > 0

    def _descriptors(self, image: Image, *, best_only: bool) -> list[NDArray[np.float64]]:
        import numpy as np

        pixels = _rgb(image, _MAX_SIDE)
        with self._lock:
            detector, landmarks, network = self._load()
            faces, confidences, _ = detector.run(pixels, _UPSAMPLE, 0.0)
            if best_only and len(faces) > 1:
                faces = [max(zip(confidences, faces, strict=True), key=lambda pair: pair[0])[1]]
            return [
                np.asarray(network.compute_face_descriptor(pixels, landmarks(pixels, face)), dtype=np.float64)
                for face in faces
            ]

    def references(self, images: Sequence[Image]) -> _FaceReferences:
        """One face per reference image, the detector's most confident: a reference shows the
        character, and the second "face" is as likely a false detection (skimage's astronaut
        photo has one on her mission patch) as a bystander."""
        descriptors = [d for image in images for d in self._descriptors(image, best_only=True)]
        if not descriptors:
            raise JudgeUnavailable(
                f"none of the {len(images)} reference images shows a face the face judge finds"
            )
        return _FaceReferences(self, descriptors)


class _FaceReferences:
    def __init__(self, judge: FaceJudge, descriptors: list[NDArray[np.float64]]) -> None:
        import numpy as np

        self._judge = judge
        self._descriptors = np.stack(descriptors)

    def score(self, image: Image) -> float | None:
        import numpy as np

        faces = self._judge._descriptors(image, best_only=False)
        if not faces:
            return None
        distances = np.linalg.norm(np.stack(faces)[:, None, :] - self._descriptors[None, :, :], axis=-1)
        return float(1.0 - distances.min())


# --- image embeddings --------------------------------------------------------------------------

# DreamBooth (Ruiz et al., 2023, table 1) reports, for subjects generated by DreamBooth on Stable
# Diffusion, mean CLIP-I 0.803 and DINO 0.668, against 0.885 and 0.774 between real photos of the
# same subject. Those are means: the floors sit about 0.1 below them so that a typical good LoRA
# passes image by image, while the control (the base model's generic instance of the same class,
# which CLIP in particular already rates fairly alike) must still be beaten by the margin. 0.02 is
# about the gap DreamBooth's table shows between close methods: a real difference, not noise.
# DreamBooth's DINO is v1 ViT-S/16; DINOv2's similarities are not calibrated to it, which is why
# floor and margin are constructor arguments.
EMBEDDING_FLOORS = {"clip": 0.70, "dinov2": 0.55}
EMBEDDING_MARGIN = 0.02
# config.json's model_type -> which family of floors applies.
_MODEL_TYPES = {"clip": "clip", "clip_vision_model": "clip", "dinov2": "dinov2"}
_BATCH = 16


class EmbeddingJudge:
    """CLIP's image tower (``image_embeds``) or DINOv2 (the CLS token), from a local folder as
    ``save_pretrained`` writes it. Score = the mean cosine similarity between the image's
    embedding and each reference's.

    The folder's ``config.json`` is read at once (a wrong path fails at start-up, not at the first
    validation); the model loads on first use, under a lock, and runs on the CPU (a torch model in
    eval mode may run on several threads at once, so scoring takes no lock)."""

    name = "embedding"

    def __init__(
        self, model_dir: str | Path, *, floor: float | None = None, margin: float = EMBEDDING_MARGIN
    ) -> None:
        self.model_dir = Path(model_dir)
        self.model_type = self._read_model_type()
        self.floor = EMBEDDING_FLOORS[_MODEL_TYPES[self.model_type]] if floor is None else floor
        self.margin = margin
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _read_model_type(self) -> str:
        # What AutoConfig would read, without importing transformers to read it.
        config = self.model_dir / "config.json"
        try:
            model_type = json.loads(config.read_text())["model_type"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise JudgeUnavailable(f"no readable image-embedding model at {self.model_dir} ({e})") from e
        if model_type not in _MODEL_TYPES:
            raise JudgeUnavailable(
                f"the model at {self.model_dir} is a {model_type!r}; the embedding judge takes CLIP or DINOv2"
            )
        return str(model_type)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                try:
                    from transformers import AutoImageProcessor, CLIPVisionModelWithProjection, Dinov2Model
                except ImportError as e:
                    raise JudgeUnavailable(
                        "the embedding judge needs transformers and torch: pip install 'loraflow[train]'"
                        f" ({e})"
                    ) from e
                model_class = Dinov2Model if self.model_type == "dinov2" else CLIPVisionModelWithProjection
                try:
                    processor = AutoImageProcessor.from_pretrained(self.model_dir)
                    model = model_class.from_pretrained(self.model_dir).eval()
                except (OSError, ValueError) as e:
                    raise JudgeUnavailable(
                        f"cannot load the image-embedding model at {self.model_dir}: {e}"
                    ) from e
                self._loaded = processor, model
            return self._loaded

    def _embed(self, images: Sequence[Image]) -> Any:
        """Unit-length embeddings, one row per image."""
        import torch

        processor, model = self._load()
        rows = []
        with torch.no_grad():
            for start in range(0, len(images), _BATCH):
                batch = [image.convert("RGB") for image in images[start : start + _BATCH]]
                pixels = processor(images=batch, return_tensors="pt")["pixel_values"]
                output = model(pixel_values=pixels)
                if self.model_type == "dinov2":
                    rows.append(output.last_hidden_state[:, 0])
                else:
                    rows.append(output.image_embeds)
        return torch.nn.functional.normalize(torch.cat(rows).float(), dim=-1)

    def references(self, images: Sequence[Image]) -> _EmbeddingReferences:
        if not images:
            raise JudgeUnavailable("there are no reference images to judge against")
        return _EmbeddingReferences(self, self._embed(images))


class _EmbeddingReferences:
    def __init__(self, judge: EmbeddingJudge, embeddings: Any) -> None:
        self._judge = judge
        self._embeddings = embeddings

    def score(self, image: Image) -> float | None:
        embedding = self._judge._embed([image])[0]
        return float((self._embeddings @ embedding).mean().clamp(-1.0, 1.0))


# --- pixels ------------------------------------------------------------------------------------


class PixelJudge:
    """For the tiny demo model only, whose images are too small and too crude for a face or an
    embedding to mean anything. Score = the best, over references, of 1 - the mean absolute
    difference of RGB values in [0, 1], both sides first scaled to ``size`` px square.

    The margin is what tells the character from any other (``benchmarks/validation.py``, the
    demo's preset, 120 steps): the demo character's LoRA beats the control by 0.063-0.072, a LoRA
    of a different character by only 0.011-0.020 (any LoRA of flat-coloured drawings makes the
    tiny model's images flatter, and so a little closer to any flat-coloured reference). 0.025
    sits between. A 40-step LoRA (+0.007-0.020) has not learned the character yet and fails."""

    name = "pixel"

    def __init__(self, *, floor: float = 0.0, margin: float = 0.025, size: int = 32) -> None:
        # No floor: the demo's images are not alike enough in absolute terms for one to mean anything.
        self.floor = floor
        self.margin = margin
        self.size = size

    def references(self, images: Sequence[Image]) -> _PixelReferences:
        if not images:
            raise JudgeUnavailable("there are no reference images to judge against")
        return _PixelReferences([_pixels(image, self.size) for image in images], self.size)


def _pixels(image: Image, size: int) -> Any:
    import numpy as np
    from PIL import Image as PILImage

    scaled = image.convert("RGB").resize((size, size), PILImage.Resampling.LANCZOS)
    return np.asarray(scaled, dtype=np.float32) / 255


class _PixelReferences:
    def __init__(self, references: list[Any], size: int) -> None:
        self._references = references
        self._size = size

    def score(self, image: Image) -> float | None:
        import numpy as np

        pixels = _pixels(image, self._size)
        return max(1.0 - float(np.abs(pixels - reference).mean()) for reference in self._references)
