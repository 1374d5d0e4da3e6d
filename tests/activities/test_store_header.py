"""store_lora checks a LoRA's safetensors header before it enters the library. A real SDXL LoRA
(hundreds of tensors, e.g. Replicate's trainer's) has a header larger than the first 64 KiB
read: the whole header is read, however long, and only the header."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from psycopg_pool import ConnectionPool
from safetensors.torch import save
from temporalio.exceptions import ApplicationError

from activities.library import LibraryActivities, _safetensors_metadata
from loraflow.contracts.lora_training import StagedArtifact
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage


def _activities(tmp_path: Path) -> tuple[LibraryActivities, LocalStorage]:
    storage = LocalStorage(tmp_path / "objects")
    unused = ConnectionPool("", open=False)  # reading the header needs no database
    return LibraryActivities(pool=unused, storage=storage, settings=Settings(min_image_side=64)), storage


def test_a_header_past_64_kib_is_read_whole_and_accepted(tmp_path: Path) -> None:
    tensors = {
        f"unet.down_blocks.{i}.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(1)
        for i in range(1500)
    }
    data = save(tensors, metadata={"loraflow.base_model": "sdxl"})
    header_length = int.from_bytes(data[:8], "little")
    assert header_length > 1 << 16  # the case at hand
    activities, storage = _activities(tmp_path)
    stored = storage.put("lora-staging/x/big.safetensors", [data])
    head = activities._safetensors_head(StagedArtifact(stored.key, stored.size, stored.sha256))
    assert len(head) >= 8 + header_length and len(head) < len(data) + 1
    assert _safetensors_metadata(head, stored.size)["loraflow.base_model"] == "sdxl"


def test_a_file_that_is_not_a_lora_is_refused(tmp_path: Path) -> None:
    activities, storage = _activities(tmp_path)
    data = save({"text_model.weight": torch.zeros(1)})
    stored = storage.put("lora-staging/x/notlora.safetensors", [data])
    head = activities._safetensors_head(StagedArtifact(stored.key, stored.size, stored.sha256))
    with pytest.raises(ApplicationError, match="no LoRA tensors"):
        _safetensors_metadata(head, stored.size)
