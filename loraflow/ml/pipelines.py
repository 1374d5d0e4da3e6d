"""The worker's one SDXL pipeline, shared by validation and keyframes.

Loading the pipeline costs seconds and gigabytes, so a worker process holds one, loaded on first
use and kept warm; a generation (validation or keyframe) has it to itself while it runs, because
LoRA adapters and trained tokens are state on the pipeline. The object owns both the pipeline and
its lock: the wiring makes one and hands it to whoever generates (no module-level state).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SdxlPipeline"]


class SdxlPipeline:
    def __init__(self, base_model_path: str) -> None:
        self.base_model_path = base_model_path
        self._lock = threading.Lock()
        self._pipe: Any = None

    @contextmanager
    def use(self) -> Iterator[Any]:
        """The loaded pipeline, for this thread alone until the block ends."""
        with self._lock:
            if self._pipe is None:
                self._pipe = _load(self.base_model_path)
            yield self._pipe

    def unload(self) -> None:
        """Drop the loaded pipeline (the next ``use`` loads it again): benchmarks of a cold start."""
        with self._lock:
            self._pipe = None


def _load(path: str) -> Any:
    import warnings

    import diffusers
    import transformers
    from diffusers import StableDiffusionXLPipeline

    # Progress bars and "no LoRA keys for the text encoders" notices are noise in a worker's log.
    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="peft")

    import torch

    from loraflow.threads import default_threads

    # Beside local trainings on the same cores: this process takes its share, not all of them.
    torch.set_num_threads(default_threads())
    pipe = StableDiffusionXLPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    return pipe
