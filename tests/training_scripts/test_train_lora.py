"""train_lora.py as the pod agent runs it: a subprocess with a JSON config, on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from training_scripts.train_lora import EVENT_PREFIX, sha256_file


def _train(
    tmp_path: Path, tiny_model: Path, images: Path, name: str, **options: Any
) -> tuple[int, list[dict]]:
    out = tmp_path / name
    config = {
        "base_model": str(tiny_model),
        "images_dir": str(images),
        "output_dir": str(out),
        "steps": 4,
        "resolution": 64,
        "rank": 4,
        "alpha": 2,
        "trigger_word": "ohwx",
        "progress_every_s": 0,
        **options,
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts.train_lora", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    events = [
        json.loads(line[len(EVENT_PREFIX) :])
        for line in proc.stdout.splitlines()
        if line.startswith(EVENT_PREFIX)
    ]
    return proc.returncode, events


def _generate(pipe: Any) -> np.ndarray:
    return pipe(
        "a photo of ohwx character",
        num_inference_steps=3,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images[0]


def test_trains_a_loadable_fp16_lora_in_both_key_layouts(
    tmp_path: Path, tiny_model: Path, character_images: Path
) -> None:
    from diffusers import StableDiffusionXLPipeline

    code, events = _train(tmp_path, tiny_model, character_images, "run")
    assert code == 0, events
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [1, 2, 3, 4]
    assert all(e["total_steps"] == 4 and e["loss"] > 0 and e["eta_s"] >= 0 for e in progress)
    assert [e["phase"] for e in events if e["event"] == "phase"] == [
        "loading",
        "caching",
        "training",
        "saving",
    ]
    done = events[-1]
    assert done["event"] == "done"
    artifact = Path(done["path"])
    assert done["sha256"] == sha256_file(artifact) and done["size"] == artifact.stat().st_size

    with safe_open(str(artifact), "pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
        dtypes = {f.get_tensor(k).dtype for k in keys}
    assert keys and all(k.startswith("unet.") and ".lora" in k for k in keys)
    assert dtypes == {torch.float16}
    assert meta["loraflow.base_model"] == "sdxl"
    assert (meta["loraflow.rank"], meta["loraflow.alpha"], meta["loraflow.steps"]) == ("4", "2", "4")
    assert meta["loraflow.trigger_word"] == "ohwx"
    with safe_open(done["kohya_path"], "pt") as f:
        kohya_keys = list(f.keys())
        alpha = f.get_tensor(next(k for k in kohya_keys if k.endswith(".alpha")))
    assert all(k.startswith("lora_unet_") for k in kohya_keys) and float(alpha) == 2.0

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_model)
    pipe.set_progress_bar_config(disable=True)
    base = _generate(pipe)
    pipe.load_lora_weights(str(artifact), adapter_name="peft")
    with_peft = _generate(pipe)
    pipe.unload_lora_weights()
    pipe.load_lora_weights(done["kohya_path"], adapter_name="kohya")
    with_kohya = _generate(pipe)
    assert np.abs(base - with_peft).mean() > 1e-4  # the LoRA changes what the model makes...
    np.testing.assert_allclose(with_peft, with_kohya, atol=1e-3)  # ...the same way in both layouts


def test_same_seed_gives_the_same_file_and_another_seed_does_not(
    tmp_path: Path, tiny_model: Path, character_images: Path
) -> None:
    _, first = _train(tmp_path, tiny_model, character_images, "a", steps=2)
    _, again = _train(tmp_path, tiny_model, character_images, "b", steps=2)
    _, other = _train(tmp_path, tiny_model, character_images, "c", steps=2, seed=7)
    assert first[-1]["sha256"] == again[-1]["sha256"]
    assert other[-1]["sha256"] != first[-1]["sha256"]


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"learning_rat": 1}, "unknown training options"), ({"optimizer": "sgd"}, "unknown optimizer")],
)
def test_bad_configs_fail_with_a_reason(
    tmp_path: Path, tiny_model: Path, character_images: Path, options: dict, reason: str
) -> None:
    code, events = _train(tmp_path, tiny_model, character_images, "bad", **options)
    assert code == 2
    assert events[-1]["event"] == "failed" and reason in events[-1]["reason"]


def test_no_images_fails_with_a_reason(tmp_path: Path, tiny_model: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, events = _train(tmp_path, tiny_model, empty, "none")
    assert code == 2 and "no training images" in events[-1]["reason"]
