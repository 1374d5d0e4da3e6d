"""Keyframes with SDXL + a LoRA, for video models that cannot load the LoRA themselves.

The base pipeline stays loaded (it is the one validation uses, under the same lock); per clip
only the LoRA is swapped in and out (``load_lora_weights`` / ``delete_adapters``), which costs
milliseconds where loading the pipeline costs seconds. Downloaded LoRA files live in a bounded
cache on disk, named by sha256 and checked against it, least recently used evicted.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from loraflow.apply import AppliedLora
from loraflow.storage import Storage


class LoraFileCache:
    def __init__(self, root: Path, storage: Storage, *, max_files: int) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._storage = storage
        self._max_files = max_files
        self._lock = threading.Lock()
        self.downloads = 0

    def path(self, key: str, sha256: str) -> Path:
        target = self.root / f"{sha256}.safetensors"
        with self._lock:
            if target.exists():
                os.utime(target)  # most recently used
                return target
            digest = hashlib.sha256()
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".part-")
            with os.fdopen(fd, "wb") as f:
                for chunk in self._storage.get(key):
                    digest.update(chunk)
                    f.write(chunk)
            if digest.hexdigest() != sha256:
                os.unlink(tmp)
                raise ValueError(f"{key}: sha256 {digest.hexdigest()} is not the recorded {sha256}")
            os.replace(tmp, target)
            self.downloads += 1
            self._evict()
            return target

    def _evict(self) -> None:
        files = sorted(self.root.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - self._max_files)]:
            old.unlink(missing_ok=True)


class LocalKeyframes:
    """SDXL keyframes on this worker (diffusers), the base pipeline kept warm."""

    def __init__(self, base_model_path: str, cache: LoraFileCache, *, steps: int = 20) -> None:
        self._base_model_path = base_model_path
        self._cache = cache
        self._steps = steps

    def pipeline(self) -> Any:
        from loraflow.validation import pipeline

        return pipeline(self._base_model_path)

    def generate(self, lora: AppliedLora, lora_key: str, prompt: str, seed: int) -> bytes:
        import torch

        from loraflow.validation import PIPELINE_LOCK

        path = self._cache.path(lora_key, lora.sha256)
        with PIPELINE_LOCK:
            pipe = self.pipeline()
            size = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
            adapter = f"lora_{lora.sha256[:16]}"
            pipe.load_lora_weights(str(path), adapter_name=adapter)
            try:
                pipe.set_adapters([adapter], adapter_weights=[lora.scale])
                image = pipe(
                    prompt,
                    num_inference_steps=self._steps,
                    height=size,
                    width=size,
                    guidance_scale=1.0 if size < 256 else 5.0,
                    generator=torch.Generator().manual_seed(seed),
                ).images[0]
            finally:
                pipe.delete_adapters(adapter)
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()
