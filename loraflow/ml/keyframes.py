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

from loraflow.domain.clips import AppliedLora
from loraflow.ml.pipelines import SdxlPipeline
from loraflow.ml.trained_tokens import TrainedTokens, read_trained_tokens, use_trained_tokens, with_tokens
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
    """SDXL keyframes on this worker (diffusers), the base pipeline kept warm.

    The last few LoRAs stay loaded as named adapters: a job's clips use the same LoRA again
    and again, and switching between resident adapters (``set_adapters``) costs a fraction of
    loading one. Older adapters are deleted (``delete_adapters``) beyond ``resident``."""

    def __init__(
        self, pipeline: SdxlPipeline | str, cache: LoraFileCache, *, steps: int = 20, resident: int = 4
    ) -> None:
        # The worker's shared pipeline (validation uses it too); a path makes one of its own.
        self.pipeline = pipeline if isinstance(pipeline, SdxlPipeline) else SdxlPipeline(pipeline)
        self._cache = cache
        self._steps = steps
        self._resident = resident
        self._order: list[str] = []  # adapter names, least recently used first
        self._tokens: dict[str, TrainedTokens | None] = {}  # each adapter's trained tokens
        self.loads = 0

    def generate(self, lora: AppliedLora, lora_key: str, prompt: str, seed: int) -> bytes:
        import torch

        with self.pipeline.use() as pipe:
            size = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
            token_map = self.activate(pipe, lora, lora_key)
            image = pipe(
                with_tokens(prompt, token_map),
                num_inference_steps=self._steps,
                height=size,
                width=size,
                guidance_scale=1.0 if size < 256 else 5.0,
                generator=torch.Generator().manual_seed(seed),
            ).images[0]
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    def activate(self, pipe: Any, lora: AppliedLora, lora_key: str) -> dict[str, str]:
        """Make ``lora`` the one active adapter at its scale (call while holding the pipeline), with
        its trained tokens if it has any; returns its token map (for ``with_tokens``)."""
        adapter = f"lora_{lora.sha256[:16]}"
        loaded = set(pipe.get_list_adapters().get("unet", []))
        self._order = [a for a in self._order if a in loaded]  # validation may have unloaded all
        if adapter not in loaded or adapter not in self._tokens:
            path = str(self._cache.path(lora_key, lora.sha256))
            if adapter not in loaded:
                pipe.load_lora_weights(path, adapter_name=adapter)
                self.loads += 1
            self._tokens[adapter] = read_trained_tokens(path)
        # Every time, not only on loading: the tokens are shared by all adapters ("<s0><s1>" in
        # each Replicate LoRA), so another LoRA may have overwritten them since.
        token_map = use_trained_tokens(pipe, self._tokens[adapter])
        if adapter in self._order:
            self._order.remove(adapter)
        self._order.append(adapter)
        while len(self._order) > self._resident:
            evicted = self._order.pop(0)
            pipe.delete_adapters(evicted)
            self._tokens.pop(evicted, None)
        pipe.enable_lora()
        pipe.set_adapters([adapter], adapter_weights=[lora.scale])
        return token_map
