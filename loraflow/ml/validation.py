"""Does the LoRA show the character? Generate with the base model and with base + LoRA, same
prompt and seed, and compare each with the character's reference images.

The score is an image similarity that needs no weights: 1 - mean absolute pixel difference to
the closest reference, where the references are first passed through the same VAE (so both
sides went through the same decoder). An image "shows the character" when the LoRA's image is
closer to the references than the base model's image for the same prompt and seed, by at least
``MARGIN``. For full-size models an image-embedding model (CLIP, DINOv2) is the better judge;
it slots in here where its weights are at hand.
"""

from __future__ import annotations

import io
import tempfile
from typing import Any

from loraflow.contracts.lora_training import ValidationRequest, ValidationScore
from loraflow.contracts.names import validation_image_key
from loraflow.ml.pipelines import SdxlPipeline
from loraflow.ml.trained_tokens import load_trained_tokens, with_tokens
from loraflow.storage import Storage

__all__ = ["MARGIN", "Validator", "similarity"]

MARGIN = 0.003


def _to_array(pipe: Any, data: bytes, size: int) -> Any:
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        rgb = opened.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        r = pipe.vae.decode(pipe.vae.encode(x.to(pipe.vae.dtype)).latent_dist.mean).sample
    return ((r[0].permute(1, 2, 0).float().numpy() + 1) / 2).clip(0, 1)


def similarity(image: Any, references: list[Any]) -> float:
    import numpy as np

    return float(max(1 - np.abs(image - r).mean() for r in references))


class Validator:
    """Scores one validation image at a time on the worker's shared pipeline."""

    def __init__(self, pipeline: SdxlPipeline | str) -> None:
        # A path makes a pipeline of its own; the wiring passes the worker's shared one.
        self._pipeline = pipeline if isinstance(pipeline, SdxlPipeline) else SdxlPipeline(pipeline)

    def score(self, request: ValidationRequest, storage: Storage) -> ValidationScore:
        import numpy as np
        from PIL import Image

        with self._pipeline.use() as pipe:
            lora_image, base_image, references = _generate_pair(pipe, request, storage)
        lora_sim, base_sim = similarity(lora_image, references), similarity(base_image, references)
        png = io.BytesIO()
        Image.fromarray((lora_image * 255).round().astype(np.uint8)).save(png, format="PNG")
        key = validation_image_key(request.lora_id, request.index)
        storage.delete(key)  # a retry regenerates the same image; validation images are not archival
        storage.put(key, [png.getvalue()])
        return ValidationScore(
            index=request.index,
            prompt=request.prompt,
            image_key=key,
            image_url=storage.url(key),
            lora_similarity=round(lora_sim, 5),
            base_similarity=round(base_sim, 5),
            shows_character=lora_sim > base_sim + MARGIN,
        )


def _generate_pair(pipe: Any, request: ValidationRequest, storage: Storage) -> tuple[Any, Any, list[Any]]:
    """The LoRA's image, the base model's image (same prompt and seed) and the references, as
    arrays in [0, 1]; the pipeline is left without adapters."""
    import torch

    size = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
    references = [_to_array(pipe, b"".join(storage.get(k)), size) for k in request.reference_keys]

    def generate(prompt: str) -> Any:
        return pipe(
            prompt,
            num_inference_steps=20,
            height=size,
            width=size,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(request.seed),
            output_type="np",
        ).images[0]

    pipe.unload_lora_weights()  # the keyframe path's resident adapters must not colour the base image
    base_image = generate(request.prompt)
    with tempfile.TemporaryDirectory() as tmp:
        # Through a file, so that diffusers reads the adapter metadata (alpha) too.
        path = f"{tmp}/lora.safetensors"
        with open(path, "wb") as f:
            for chunk in storage.get(request.lora_key):
                f.write(chunk)
        pipe.load_lora_weights(path, adapter_name="validation")
        token_map = load_trained_tokens(pipe, path)
    try:
        lora_image = generate(with_tokens(request.prompt, token_map))
    finally:
        pipe.unload_lora_weights()
    return lora_image, base_image, references
