"""Train a character LoRA for an SDXL pipeline: diffusers + peft + accelerate.

    python -m training_scripts.train_lora --config run.json

``run.json`` (every key but the first three has a default; see ``TrainConfig``)::

    {"base_model": "/models/sdxl", "images_dir": "/data/images", "output_dir": "/data/out",
     "trigger_word": "ohwx", "steps": 1000, "rank": 16, "alpha": 16, ...}

What it does, in the order the public trainers do it (diffusers' train_dreambooth_lora_sdxl,
kohya sd-scripts): load the pipeline's parts; caption every image with the trigger word; cache
VAE latents and both text encoders' embeddings once (the encoders and VAE are then freed);
add a LoRA (rank r, alpha a) to the UNet's attention projections; train it with AdamW (or
8-bit AdamW / Prodigy) on the denoising loss, with min-SNR weighting, mixed precision and
gradient checkpointing on a GPU and fp32 on a CPU; save one ``.safetensors`` in diffusers/PEFT
key layout, fp16, with metadata, plus a kohya/ComfyUI-layout copy.

Progress goes to stdout as one JSON object per line, prefixed ``LORAFLOW_EVENT``, which the pod
agent reads: ``{"event": "progress", "step": 10, "total_steps": 500, "loss": 0.08, "eta_s": 93}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

EVENT_PREFIX = "LORAFLOW_EVENT "
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
ARTIFACT_NAME = "lora.safetensors"
KOHYA_ARTIFACT_NAME = "lora_kohya.safetensors"
#: Where the intermediate checkpoints go, under the output folder (``checkpoint_name(step)``).
CHECKPOINTS_DIR = "checkpoints"


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def checkpoint_steps(steps: int, fractions: tuple[float, ...]) -> list[int]:
    """The steps the LoRA is saved at: each fraction of ``steps`` (at least step 1), the last
    step always (it is the artifact), each once, in order."""
    chosen = {min(steps, max(1, round(f * steps))) for f in fractions if 0 < f <= 1}
    return sorted(chosen | {steps})


@dataclasses.dataclass
class TrainConfig:
    base_model: str
    images_dir: str
    output_dir: str
    trigger_word: str = "ohwx"
    class_word: str = "character"
    base_model_family: str = "sdxl"
    steps: int = 1000
    rank: int = 16
    alpha: int = 16
    learning_rate: float = 1e-4
    resolution: int = 1024
    seed: int = 42
    batch_size: int = 1
    gradient_accumulation: int = 1
    optimizer: str = "adamw"  # adamw | adamw8bit | prodigy
    snr_gamma: float | None = 5.0
    mixed_precision: str = "auto"  # auto | no | fp16 | bf16
    gradient_checkpointing: str = "auto"  # auto (on for GPUs) | on | off
    progress_every_s: float = 0.5
    #: Save the LoRA at these fractions of the steps too: validation scores each checkpoint and
    #: keeps the one most like the character (later training is not always better: it overfits).
    checkpoint_fractions: tuple[float, ...] = (0.5, 0.75, 1.0)
    target_modules: tuple[str, ...] = ("to_k", "to_q", "to_v", "to_out.0")

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        data = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        for key in ("target_modules", "checkpoint_fractions"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def emit(event: str, **fields: Any) -> None:
    print(EVENT_PREFIX + json.dumps({"event": event, **fields}), flush=True)


def caption_for(image: Path, cfg: TrainConfig) -> str:
    """The image's own caption (a .txt beside it) if it has one, with the trigger word added if
    missing; otherwise the standard DreamBooth caption."""
    txt = image.with_suffix(".txt")
    if txt.exists():
        text = txt.read_text().strip()
        return text if cfg.trigger_word in text else f"{cfg.trigger_word} {text}"
    return f"a photo of {cfg.trigger_word} {cfg.class_word}"


def load_image(path: Path, resolution: int) -> Any:
    """RGB, EXIF-rotated, shorter side scaled to ``resolution``, centre-cropped; [-1, 1] tensor."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        scale = resolution / min(im.size)
        im = im.resize(
            (max(resolution, round(im.width * scale)), max(resolution, round(im.height * scale))),
            Image.Resampling.LANCZOS,
        )
        left, top = (im.width - resolution) // 2, (im.height - resolution) // 2
        im = im.crop((left, top, left + resolution, top + resolution))
        array = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


def pick_precision(cfg: TrainConfig, device: str) -> str:
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    if device != "cuda":
        return "no"  # fp32 on the CPU
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def encode_prompt(text_encoders: list[Any], tokenizers: list[Any], prompt: str) -> tuple[Any, Any]:
    """SDXL's conditioning: both encoders' penultimate hidden states, concatenated, and the
    second encoder's pooled projection (as in diffusers' train_dreambooth_lora_sdxl.py)."""
    import torch

    embeds = []
    pooled = None
    for tokenizer, encoder in zip(tokenizers, text_encoders, strict=True):
        ids = tokenizer(
            prompt,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(encoder.device)
        out = encoder(ids, output_hidden_states=True, return_dict=True)
        pooled = out[0]  # the last encoder's pooled output is what SDXL uses
        embeds.append(out.hidden_states[-2])
    return torch.cat(embeds, dim=-1), pooled


def build_optimizer(name: str, params: list[Any], lr: float) -> Any:
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    if name == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise SystemExit("optimizer adamw8bit needs the bitsandbytes package") from exc
        return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=1e-2)
    if name == "prodigy":
        try:
            from prodigyopt import Prodigy
        except ImportError as exc:
            raise SystemExit("optimizer prodigy needs the prodigyopt package") from exc
        return Prodigy(params, lr=lr, weight_decay=1e-2, safeguard_warmup=True, use_bias_correction=True)
    raise SystemExit(f"unknown optimizer {name!r} (adamw, adamw8bit or prodigy)")


@dataclasses.dataclass
class _Models:
    """What training needs, loaded once: the UNet to adapt and the cached, frozen inputs."""

    unet: Any
    noise_scheduler: Any
    latent_cache: list[tuple[Any, Any]]  # per image: the VAE's latent mean and std
    prompt_cache: list[tuple[Any, Any]]  # per image: prompt embeddings and pooled embeddings
    scaling: float


def train(cfg: TrainConfig) -> Path:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    started = time.monotonic()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = pick_precision(cfg, device)
    accelerator = Accelerator(
        mixed_precision=precision, gradient_accumulation_steps=cfg.gradient_accumulation, cpu=device == "cpu"
    )
    set_seed(cfg.seed)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)

    images = sorted(p for p in Path(cfg.images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SystemExit(f"no training images in {cfg.images_dir}")
    emit("phase", phase="loading", images=len(images), device=device, precision=precision)
    models = _load_and_cache(cfg, images, accelerator, weight_dtype, device)
    lora_config = _add_lora(models.unet, cfg, precision, device)
    params = [p for p in models.unet.parameters() if p.requires_grad]
    optimizer = build_optimizer(cfg.optimizer, params, cfg.learning_rate)
    models.unet, optimizer = accelerator.prepare(models.unet, optimizer)
    output_dir = Path(cfg.output_dir)

    def save_checkpoint(step: int) -> None:
        """An intermediate LoRA (diffusers layout), announced for validation to score."""
        name = checkpoint_name(step)
        path = save_lora(
            accelerator.unwrap_model(models.unet), lora_config, cfg, output_dir / CHECKPOINTS_DIR,
            step=step, filename=f"{name}.safetensors", kohya=False,
        )  # fmt: skip
        emit("checkpoint", name=name, step=step, sha256=sha256_file(path), size=path.stat().st_size)

    _train_steps(cfg, models, accelerator, optimizer, weight_dtype, len(images), save_checkpoint)

    emit("phase", phase="saving")
    out = save_lora(accelerator.unwrap_model(models.unet), lora_config, cfg, output_dir)
    emit(
        "done",
        path=str(out),
        sha256=sha256_file(out),
        size=out.stat().st_size,
        kohya_path=str(out.parent / KOHYA_ARTIFACT_NAME),
        elapsed_s=round(time.monotonic() - started, 2),
    )
    return out


def _load_and_cache(
    cfg: TrainConfig, images: list[Path], accelerator: Any, weight_dtype: Any, device: str
) -> _Models:
    """Load the pipeline's parts, and cache everything that does not change during training
    (latents and prompt embeddings) once; the VAE and text encoders are freed afterwards."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel, CLIPTextModelWithProjection

    base = cfg.base_model
    tokenizers = [AutoTokenizer.from_pretrained(base, subfolder=s) for s in ("tokenizer", "tokenizer_2")]
    text_encoders = [
        CLIPTextModel.from_pretrained(base, subfolder="text_encoder", torch_dtype=weight_dtype),
        CLIPTextModelWithProjection.from_pretrained(
            base, subfolder="text_encoder_2", torch_dtype=weight_dtype
        ),
    ]
    vae = AutoencoderKL.from_pretrained(
        base, subfolder="vae", torch_dtype=torch.float32
    )  # fp16 VAE overflows
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", torch_dtype=weight_dtype)
    noise_scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    for module in (*text_encoders, vae, unet):
        module.requires_grad_(False)
        module.to(accelerator.device)

    emit("phase", phase="caching")
    with torch.no_grad():
        latent_cache = []
        for path in images:
            pixels = load_image(path, cfg.resolution).unsqueeze(0).to(accelerator.device)
            dist = vae.encode(pixels).latent_dist
            latent_cache.append((dist.mean.cpu(), dist.std.cpu()))
        prompt_cache = [encode_prompt(text_encoders, tokenizers, caption_for(p, cfg)) for p in images]
    scaling = vae.config.scaling_factor
    del vae, text_encoders
    if device == "cuda":
        torch.cuda.empty_cache()
    return _Models(unet, noise_scheduler, latent_cache, prompt_cache, scaling)


def _add_lora(unet: Any, cfg: TrainConfig, precision: str, device: str) -> Any:
    """The LoRA adapter on the UNet's target modules; its weights train in fp32."""
    import torch
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    lora_config = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        init_lora_weights="gaussian",
        target_modules=list(cfg.target_modules),
    )
    unet.add_adapter(lora_config)
    if precision in ("fp16", "bf16"):
        cast_training_params(unet, dtype=torch.float32)  # trainable LoRA weights stay fp32
    checkpointing = cfg.gradient_checkpointing == "on" or (
        cfg.gradient_checkpointing == "auto" and device == "cuda"
    )
    if checkpointing:
        unet.enable_gradient_checkpointing()
    return lora_config


def _train_steps(
    cfg: TrainConfig,
    models: _Models,
    accelerator: Any,
    optimizer: Any,
    weight_dtype: Any,
    n_images: int,
    save_checkpoint: Any,
) -> None:
    """The optimisation loop, reporting progress (step, loss, ETA) as events and saving the
    intermediate checkpoints (the last step's LoRA is the artifact, saved by the caller)."""
    import torch

    saves = set(checkpoint_steps(cfg.steps, cfg.checkpoint_fractions)) - {cfg.steps}

    add_time_ids = torch.tensor(
        [[cfg.resolution, cfg.resolution, 0, 0, cfg.resolution, cfg.resolution]], dtype=weight_dtype
    ).to(accelerator.device)
    order = random.Random(cfg.seed)  # noqa: S311 - which image next, not security
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    emit("phase", phase="training", total_steps=cfg.steps)
    train_started = time.monotonic()
    last_emit = 0.0
    unet = models.unet
    unet.train()
    for step in range(1, cfg.steps + 1):
        picks = [order.randrange(n_images) for _ in range(cfg.batch_size)]
        with accelerator.accumulate(unet):
            loss = _step_loss(cfg, models, picks, generator, add_time_ids, weight_dtype, accelerator.device)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        now = time.monotonic()
        if step == cfg.steps or now - last_emit >= cfg.progress_every_s:
            last_emit = now
            per_step = (now - train_started) / step
            emit(
                "progress",
                step=step,
                total_steps=cfg.steps,
                loss=round(float(loss.detach()), 6),
                eta_s=round(per_step * (cfg.steps - step), 1),
                seconds_per_step=round(per_step, 4),
            )
        if step in saves:
            save_checkpoint(step)


def _step_loss(
    cfg: TrainConfig,
    models: _Models,
    picks: list[int],
    generator: Any,
    add_time_ids: Any,
    weight_dtype: Any,
    device: Any,
) -> Any:
    """One batch's denoising loss (min-SNR weighted when ``snr_gamma`` is set)."""
    import torch
    from diffusers.training_utils import compute_snr

    scheduler = models.noise_scheduler
    mean = torch.cat([models.latent_cache[i][0] for i in picks])
    std = torch.cat([models.latent_cache[i][1] for i in picks])
    latents = (mean + std * torch.randn(mean.shape, generator=generator)) * models.scaling
    latents = latents.to(device, dtype=weight_dtype)
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(picks),), generator=generator).to(
        device
    )
    noisy = scheduler.add_noise(latents, noise, timesteps)
    prompt_embeds = torch.cat([models.prompt_cache[i][0] for i in picks]).to(device)
    pooled = torch.cat([models.prompt_cache[i][1] for i in picks]).to(device)
    pred = models.unet(
        noisy,
        timesteps,
        prompt_embeds,
        added_cond_kwargs={"text_embeds": pooled, "time_ids": add_time_ids.repeat(len(picks), 1)},
        return_dict=False,
    )[0]
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    if not cfg.snr_gamma:
        return torch.nn.functional.mse_loss(pred.float(), target.float())
    # Min-SNR weighting (Hang et al. 2023), as diffusers' scripts do it.
    snr = compute_snr(scheduler, timesteps)
    weights = torch.stack([snr, cfg.snr_gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[0]
    weights = weights / snr if scheduler.config.prediction_type == "epsilon" else weights / (snr + 1)
    loss = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="none")
    return (loss.mean(dim=list(range(1, loss.ndim))) * weights).mean()


def save_lora(
    unet: Any,
    lora_config: Any,
    cfg: TrainConfig,
    output_dir: Path,
    *,
    step: int | None = None,
    filename: str = ARTIFACT_NAME,
    kohya: bool = True,
) -> Path:
    """Write ``filename`` (diffusers/PEFT keys, fp16) and, with ``kohya``,
    ``lora_kohya.safetensors``; ``step`` is the step it was saved at (default: the last)."""
    import tempfile

    import torch
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    output_dir.mkdir(parents=True, exist_ok=True)
    peft_state = {k: v.detach().to("cpu", torch.float16) for k, v in get_peft_model_state_dict(unet).items()}
    metadata = {
        "loraflow.base_model": cfg.base_model_family,
        "loraflow.base_model_path": str(cfg.base_model),
        "loraflow.rank": str(cfg.rank),
        "loraflow.alpha": str(cfg.alpha),
        "loraflow.steps": str(cfg.steps if step is None else step),
        "loraflow.trigger_word": cfg.trigger_word,
        "loraflow.resolution": str(cfg.resolution),
        "loraflow.seed": str(cfg.seed),
        # The names kohya-based tools (and ComfyUI/A1111 UIs) read.
        "ss_network_dim": str(cfg.rank),
        "ss_network_alpha": str(cfg.alpha),
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_output_name": cfg.trigger_word,
    }
    with tempfile.TemporaryDirectory(dir=output_dir) as tmp:
        StableDiffusionXLPipeline.save_lora_weights(
            tmp,
            unet_lora_layers=convert_state_dict_to_diffusers(peft_state),
            unet_lora_adapter_metadata=lora_config.to_dict(),
            weight_name=filename,
            safe_serialization=True,
        )
        written = Path(tmp) / filename
        from safetensors import safe_open

        with safe_open(str(written), framework="pt") as f:
            diffusers_meta = dict(f.metadata() or {})
        # PEFT keeps target_modules as a set, serialised in hash order: sort it so that the same
        # seed gives a byte-identical file.
        if "lora_adapter_metadata" in diffusers_meta:
            adapter = json.loads(diffusers_meta["lora_adapter_metadata"])
            adapter = {k: sorted(v) if isinstance(v, list) else v for k, v in adapter.items()}
            diffusers_meta["lora_adapter_metadata"] = json.dumps(adapter, sort_keys=True)
        tensors = load_file(str(written))
        final = output_dir / filename
        save_file(tensors, str(final), metadata={**diffusers_meta, **metadata})
        canonicalize_safetensors(final)
    if not kohya:
        return final

    kohya = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in peft_state.items()})
    kohya = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in kohya.items()}
    # kohya keys are "lora_unet_<module>"; the converter writes alpha = rank, we write the real one.
    for key in [k for k in kohya if k.endswith(".lora_down.weight")]:
        kohya[key.replace(".lora_down.weight", ".alpha")] = torch.tensor(
            float(cfg.alpha), dtype=torch.float16
        )
    save_file(kohya, str(output_dir / KOHYA_ARTIFACT_NAME), metadata=metadata)
    canonicalize_safetensors(output_dir / KOHYA_ARTIFACT_NAME)
    return final


def canonicalize_safetensors(path: Path) -> None:
    """Rewrite the header with sorted keys. safetensors writes it from a hash map whose order
    changes per process; sorting makes a seeded run's file byte-identical (same sha256).
    Offsets in the header are relative to the data section, so the data is copied unchanged."""
    import struct

    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format allows space padding; keep 8-byte alignment
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + length :])
    tmp.replace(path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _exit_with_parent(poll_s: float = 1.0) -> None:
    """Exit as soon as the process that started us (the pod agent) is gone: its orphaned
    trainer would otherwise train on, billing, with nobody to report to."""
    import os
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="run.json (see module docstring)")
    args = parser.parse_args(argv)
    _exit_with_parent()
    try:
        cfg = TrainConfig.from_file(args.config)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        emit("failed", reason=f"bad training config: {exc}")
        return 2
    try:
        train(cfg)
    except SystemExit as exc:
        emit("failed", reason=str(exc))
        return 2
    except Exception as exc:
        emit("failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
