"""Seconds per training step: train_lora.py against a bare diffusers + peft loop, same model, same run.

    .venv/bin/python benchmarks/train_step.py [--steps 40] [--warmup 5] [--resolution 64]

Both train the same UNet LoRA (rank 16, attention projections) on the tiny SDXL-shaped pipeline
at the same resolution and batch size. The trainer runs as the pod agent runs it (a subprocess
reading a JSON config); its per-step time is taken from the arrival times of its progress lines
between the warm-up step and the last. The bare loop is the minimum any trainer must do: UNet
forward with SDXL's added conditioning, MSE loss, backward, AdamW step. Ratio = trainer / bare
(target ≤ 1.05: the trainer adds nothing).

With a CUDA GPU, --full-size also times the full-size SDXL UNet (its published config, random
weights) at 1024 px in bf16 with rank 16, reporting it/s and peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training_scripts.tiny_model import ensure_tiny_sdxl
from training_scripts.train_lora import EVENT_PREFIX

TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]

# diffusers' published SDXL base UNet config (stabilityai/stable-diffusion-xl-base-1.0/unet).
SDXL_UNET = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}


def make_images(directory: Path, n: int = 4) -> None:
    from PIL import Image, ImageDraw

    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = Image.new("RGB", (128, 128), (40 * i, 120, 200))
        ImageDraw.Draw(im).ellipse((20 + 5 * i, 10, 100, 90), fill=(240, 200, 150))
        im.save(directory / f"{i}.png")


def time_trainer(model: Path, work: Path, steps: int, warmup: int, resolution: int) -> list[float]:
    make_images(work / "images")
    config = {
        "base_model": str(model),
        "images_dir": str(work / "images"),
        "output_dir": str(work / "out"),
        "steps": steps,
        "resolution": resolution,
        "rank": 16,
        "alpha": 16,
        "progress_every_s": 0,  # a line per step, so each step can be timed
        "snr_gamma": None,  # the bare loop has no min-SNR weighting either
    }
    (work / "run.json").write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "training_scripts.train_lora", "--config", str(work / "run.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    arrivals: dict[int, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(EVENT_PREFIX):
            event = json.loads(line[len(EVENT_PREFIX) :])
            if event["event"] == "progress":
                arrivals[event["step"]] = time.perf_counter()
    if proc.wait() != 0:
        raise SystemExit("the trainer failed")
    return [arrivals[s] - arrivals[s - 1] for s in range(warmup + 1, steps + 1)]


def time_bare_loop(model: Path, steps: int, warmup: int, resolution: int) -> list[float]:
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from peft import LoraConfig

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet")
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian", target_modules=TARGETS))
    scheduler = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    optimizer = torch.optim.AdamW(
        [p for p in unet.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-2
    )
    latent = resolution // 2  # the tiny VAE downsamples by 2
    latents = torch.randn(1, 4, latent, latent)
    embeds = torch.randn(1, 77, unet.config.cross_attention_dim)
    pooled = torch.randn(1, 32)
    time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]], dtype=torch.float32)
    unet.train()
    durations = []
    for step in range(1, steps + 1):
        start = time.perf_counter()
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (1,))
        noisy = scheduler.add_noise(latents, noise, t)
        pred = unet(noisy, t, embeds, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step > warmup:
            durations.append(time.perf_counter() - start)
    return durations


def time_full_size_gpu(steps: int, warmup: int) -> None:
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    unet = UNet2DConditionModel.from_config(SDXL_UNET).to("cuda", torch.bfloat16)
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian", target_modules=TARGETS))
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    unet.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4)
    latents = torch.randn(1, 4, 128, 128, device="cuda", dtype=torch.bfloat16)
    embeds = torch.randn(1, 77, 2048, device="cuda", dtype=torch.bfloat16)
    pooled = torch.randn(1, 1280, device="cuda", dtype=torch.bfloat16)
    time_ids = torch.tensor([[1024, 1024, 0, 0, 1024, 1024]], device="cuda", dtype=torch.bfloat16)
    torch.cuda.reset_peak_memory_stats()
    durations = []
    for step in range(steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            noise = torch.randn_like(latents)
            t = torch.randint(0, 1000, (1,), device="cuda")
            pred = unet(
                latents + noise, t, embeds, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}
            ).sample
            loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= warmup:
            durations.append(time.perf_counter() - start)
    per_step = statistics.median(durations)
    print(
        f"full-size SDXL UNet, 1024 px, bf16, rank 16, gradient checkpointing: {1 / per_step:.2f} it/s, "
        f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB "
        f"({torch.cuda.get_device_name()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--full-size", action="store_true", help="also time full-size SDXL on a CUDA GPU")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="loraflow-train-step-"))
    model = ensure_tiny_sdxl(Path(".loraflow/models"))
    bare = time_bare_loop(model, args.steps, args.warmup, args.resolution)
    trainer = time_trainer(model, work, args.steps, args.warmup, args.resolution)
    b, t = statistics.median(bare), statistics.median(trainer)
    print(f"tiny SDXL-shaped UNet, {args.resolution} px, rank 16, CPU fp32, median of {len(bare)} steps")
    print(f"  bare diffusers+peft loop  {b * 1000:8.1f} ms/step")
    print(f"  train_lora.py             {t * 1000:8.1f} ms/step")
    print(f"  ratio trainer / bare      {t / b:8.3f}")
    if args.full_size:
        import torch

        if torch.cuda.is_available():
            time_full_size_gpu(steps=20, warmup=5)
        else:
            print("full-size: no CUDA GPU here; skipped")


if __name__ == "__main__":
    main()
