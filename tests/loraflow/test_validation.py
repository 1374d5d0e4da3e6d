"""The in-worker validation that workflows started before ``validate-on-machine`` still call
(``validate_image``): a LoRA that is not applied (all-zero weights) shows no character."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from loraflow.contracts.lora_training import DEFAULT_VALIDATION_PROMPTS, ValidationRequest
from loraflow.ml import validation
from loraflow.storage.local import LocalStorage


def test_a_lora_that_changes_nothing_fails_validation(
    tmp_path: Path, tiny_model: Path, character_images: Path
) -> None:
    config = {
        "base_model": str(tiny_model),
        "images_dir": str(character_images),
        "output_dir": str(tmp_path / "out"),
        "steps": 2,
        "resolution": 64,
        "rank": 4,
        "alpha": 4,
    }
    (tmp_path / "run.json").write_text(json.dumps(config))
    subprocess.run(
        [sys.executable, "-m", "training_scripts.train_lora", "--config", str(tmp_path / "run.json")],
        check=True,
        capture_output=True,
    )
    # Zero the up-projections: the LoRA loads, but adds nothing to the model.
    tensors = load_file(str(tmp_path / "out" / "lora.safetensors"))
    zeroed = {k: torch.zeros_like(v) if ".lora.up." in k else v for k, v in tensors.items()}
    storage = LocalStorage(tmp_path / "storage")
    path = tmp_path / "zero.safetensors"
    save_file(zeroed, str(path))
    storage.put("lora-models/x/zero.safetensors", [path.read_bytes()])
    refs = []
    for image in sorted(character_images.iterdir()):
        refs.append(f"lora-staging/x/dataset/{image.name}")
        storage.put(refs[-1], [image.read_bytes()])

    validator = validation.Validator(str(tiny_model))
    scores = [
        validator.score(
            ValidationRequest(
                "x", i, prompt.format(trigger="ohwx"), 1000 + i, "lora-models/x/zero.safetensors", refs
            ),
            storage,
        )
        for i, prompt in enumerate(DEFAULT_VALIDATION_PROMPTS[:1])
    ]
    assert [s.shows_character for s in scores] == [False]
    assert all(abs(s.lora_similarity - s.base_similarity) < 1e-6 for s in scores)
    assert storage.list("lora-validation/x") == ["lora-validation/x/0.png"]
