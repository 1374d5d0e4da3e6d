"""Validation images on the pod: the base model's image and each checkpoint's, same prompt and
seed, generated where the GPU and the model already are (the pod agent's ``/generate``).

The pipeline is loaded once per pod: into CPU memory while the trainer trains (``prepare``: the
imports and the read from disk take seconds that would otherwise be added to validation), and
onto the GPU on the first request, after training has ended and freed it. Requests that arrive
together are generated together: one batch of every prompt for the base model, then one batch
per checkpoint with only that checkpoint's LoRA loaded; each image has its own seeded
generator, so batching does not change which image a prompt and seed give.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training_scripts.agent_protocol import BASE_IMAGES, GeneratedImage, GenerateRequest

__all__ = ["ValidationGenerator"]

#: Images per forward pass; bigger batches than this gain little on a GPU and cost memory.
MAX_BATCH = 8


class ValidationGenerator:
    def __init__(self, base_model: str) -> None:
        self._base_model = base_model
        self._pipe: Any = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Load the pipeline into CPU memory (not the GPU: the trainer is using it)."""
        with self._lock:
            self._load()

    def generate(
        self, requests: Sequence[GenerateRequest], checkpoint_files: dict[str, Path], out_dir: Path
    ) -> dict[str, list[GeneratedImage]]:
        """Every request's images, written as PNGs under ``out_dir/{request_id}/``."""
        import torch

        with self._lock:
            pipe = self._load()
            if torch.cuda.is_available() and pipe.device.type != "cuda":
                pipe.to("cuda")
            made: dict[str, list[GeneratedImage]] = {r.request_id: [] for r in requests}
            pipe.unload_lora_weights()
            self._batch(pipe, requests, BASE_IMAGES, out_dir, made)
            names = list(dict.fromkeys(name for r in requests for name in r.checkpoints))
            for name in names:
                wanting = [r for r in requests if name in r.checkpoints]
                pipe.load_lora_weights(str(checkpoint_files[name]), adapter_name="validation")
                try:
                    self._batch(pipe, wanting, name, out_dir, made)
                finally:
                    pipe.unload_lora_weights()
            return made

    def _batch(
        self,
        pipe: Any,
        requests: Sequence[GenerateRequest],
        checkpoint: str,
        out_dir: Path,
        made: dict[str, list[GeneratedImage]],
    ) -> None:
        import torch
        from PIL import Image

        size = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
        # The tiny test model is trained and judged without guidance; a real SDXL needs it.
        guidance = 1.0 if size < 256 else 5.0
        for start in range(0, len(requests), MAX_BATCH):
            chunk = list(requests[start : start + MAX_BATCH])
            steps = max(r.steps for r in chunk)
            images = pipe(
                [r.prompt for r in chunk],
                num_inference_steps=steps,
                height=size,
                width=size,
                guidance_scale=guidance,
                generator=[torch.Generator().manual_seed(r.seed) for r in chunk],
                output_type="np",
            ).images
            for request, array in zip(chunk, images, strict=True):
                png = io.BytesIO()
                Image.fromarray((array * 255).round().clip(0, 255).astype("uint8")).save(png, format="PNG")
                data = png.getvalue()
                file = f"{checkpoint}.png"
                target = out_dir / request.request_id / file
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".part")
                tmp.write_bytes(data)
                tmp.replace(target)
                made[request.request_id].append(
                    GeneratedImage(checkpoint=checkpoint, file=file, sha256=hashlib.sha256(data).hexdigest())
                )

    def _load(self) -> Any:
        if self._pipe is not None:
            return self._pipe
        import warnings

        import diffusers
        import torch
        import transformers
        from diffusers import StableDiffusionXLPipeline

        for library in (diffusers, transformers):
            library.utils.logging.set_verbosity_error()
            library.utils.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="peft")
        started = time.monotonic()
        dtype = torch.float16 if torch.cuda.is_available() else torch.float32
        pipe = StableDiffusionXLPipeline.from_pretrained(self._base_model, torch_dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        self.load_s = time.monotonic() - started
        return pipe
