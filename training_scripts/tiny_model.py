"""A tiny SDXL-shaped diffusers pipeline with random weights, built from a config.

Nothing is downloaded: this is what diffusers' own tests do. The tests and the demo train on it,
so the whole training path (two CLIP text encoders, the UNet with SDXL's added time/text
conditioning, the VAE, LoRA on the UNet's attention) runs for real in seconds on a CPU. One
part is not random: the VAE is loaded from ``tiny_vae.safetensors``, fitted to keep colours
(``training_scripts/tiny_vae.py``), so that a LoRA can show a character at all.

    python -m training_scripts.tiny_model OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: Bumped whenever the architecture or the VAE fit changes, so cached copies are rebuilt.
TINY_MODEL_VERSION = "2"
RESOLUTION = 64


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable-character map (the BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _byte_level_tokenizer_files(directory: Path) -> None:
    """A CLIP tokenizer with a byte-level vocabulary: every byte, its end-of-word form, and the
    start/end tokens; no merges. Any text tokenizes, one token per byte."""
    byte_chars = list(_bytes_to_unicode().values())
    vocab = {ch: i for i, ch in enumerate(byte_chars)}
    vocab |= {ch + "</w>": len(byte_chars) + i for i, ch in enumerate(byte_chars)}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")


def build_tiny_sdxl(out_dir: Path, *, seed: int = 0) -> Path:
    """Build and save the pipeline to ``out_dir`` (a diffusers pipeline folder)."""
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from safetensors.torch import load_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from training_scripts.tiny_vae import WEIGHTS as VAE_WEIGHTS
    from training_scripts.tiny_vae import tiny_vae

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=RESOLUTION // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 time ids x 8 + 32 pooled text dims
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
        num_train_timesteps=1000,
    )
    vae = tiny_vae(RESOLUTION)
    vae.load_state_dict({k: v.float() for k, v in load_file(str(VAE_WEIGHTS)).items()})
    text_config = CLIPTextConfig(
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        vocab_size=600,
        hidden_act="gelu",
        projection_dim=32,
        max_position_embeddings=77,
    )
    text_encoder = CLIPTextModel(text_config)
    text_encoder_2 = CLIPTextModelWithProjection(text_config)

    tok_dir = out_dir / "_tokenizer_src"
    _byte_level_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)

    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
    )
    pipe.save_pretrained(out_dir)
    for f in tok_dir.iterdir():
        f.unlink()
    tok_dir.rmdir()
    (out_dir / "loraflow_tiny_model.json").write_text(
        json.dumps({"version": TINY_MODEL_VERSION, "resolution": RESOLUTION, "seed": seed})
    )
    return out_dir


def ensure_tiny_sdxl(cache_dir: Path) -> Path:
    """The cached tiny pipeline under ``cache_dir``, built on first use (atomically)."""
    import os
    import shutil
    import tempfile

    target = cache_dir / f"tiny-sdxl-v{TINY_MODEL_VERSION}"
    if (target / "loraflow_tiny_model.json").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-sdxl-", dir=cache_dir))
    try:
        build_tiny_sdxl(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; theirs is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


if __name__ == "__main__":
    print(ensure_tiny_sdxl(Path(sys.argv[1] if len(sys.argv) > 1 else ".loraflow/models")))


#: Training options for the tiny model. Its UNet has random weights, so a LoRA on the attention
#: projections alone cannot make it denoise anything; LoRA on every linear and conv layer, a
#: higher learning rate and no min-SNR weighting make it learn the character in ~100 CPU steps
#: (measured by `make demo`, tiny model v2, 2026-11-26: at 120 steps the pixel judge scores the
#: LoRA's images 0.7925-0.8072 against 0.7261-0.7421 for the base model's, every margin above
#: the 0.025 it needs; checkpoints 60/90/120 score 0.772/0.782/0.802; 58 s for the whole demo).
#: Production defaults (rank 16 on attention, lr 1e-4) are for real models.
TINY_TRAINING_PARAMS = {
    "resolution": RESOLUTION,
    "steps": 120,
    "rank": 16,
    "alpha": 16,
    "learning_rate": 3e-3,
    "snr_gamma": None,
    "target_modules": [
        "to_k", "to_q", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
        "conv1", "conv2", "conv_shortcut", "time_emb_proj", "conv_in", "conv_out",
    ],
}  # fmt: skip
