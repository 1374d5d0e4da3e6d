"""The tiny model's VAE, fitted once so that it keeps colours, and its committed weights.

A random VAE decodes every latent to the same muddy colours (``benchmarks/validation.py``,
section 0: the demo character, mean RGB 0.43/0.44/0.64, and a different one, 0.57/0.69/0.19,
both come back as about 0.46/0.59/0.47), so a LoRA trained on the tiny model could not show any
character and no judge could tell one character's LoRA from another's. Fitted for 400 steps on
random flat-colour scenes (a background and a few boxes, what the demo's characters are made
of), it gives the colours back (0.40/0.52/0.66 and 0.58/0.50/0.14), and a LoRA trained on the
demo character moves the tiny model's images towards it, while one trained on another character
moves them much less (same benchmark, section 1).

Fitting takes about two minutes on two CPU cores, so the result is committed
(``tiny_vae.safetensors``, fp16, ~330 KB) and ``tiny_model.py`` loads it; this script is how it
was made, and remakes it identically on the same torch:

    python -m training_scripts.tiny_vae
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

WEIGHTS = Path(__file__).resolve().parent / "tiny_vae.safetensors"
FIT_STEPS = 400


def tiny_vae(resolution: int) -> Any:
    """The tiny model's VAE architecture (random weights)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=resolution,
        norm_num_groups=8,
        scaling_factor=1.0,
        mid_block_add_attention=False,
    )


def _scenes(generator: Any, n: int, size: int) -> Any:
    """``n`` random flat-colour scenes in [-1, 1]: a background and one to three boxes."""
    import torch

    batch = torch.empty(n, 3, size, size)
    for k in range(n):
        image = torch.rand(3, generator=generator)[:, None, None].expand(3, size, size).clone()
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            colour = torch.rand(3, generator=generator)
            top, bottom = sorted(torch.randint(0, size, (2,), generator=generator).tolist())
            left, right = sorted(torch.randint(0, size, (2,), generator=generator).tolist())
            image[:, top : bottom + 1, left : right + 1] = colour[:, None, None]
        batch[k] = image * 2 - 1
    return batch


def fit(vae: Any, *, steps: int = FIT_STEPS, seed: int = 0, size: int = 64) -> None:
    """Fit ``vae`` to reconstruct flat-colour scenes (L1, a touch of KL), deterministically."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3)
    vae.train()
    for step in range(steps):
        x = _scenes(generator, 16, size)
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        loss = (reconstruction - x).abs().mean() + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step}: loss {loss.item():.4f}", flush=True)
    vae.eval()


def main() -> int:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    torch.set_num_threads(2)
    vae = tiny_vae(64)
    fit(vae)
    save_file(
        {k: v.detach().to(torch.float16).contiguous() for k, v in vae.state_dict().items()}, str(WEIGHTS)
    )
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
