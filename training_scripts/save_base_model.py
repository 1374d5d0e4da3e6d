"""Bake the base model into the trainer image: fetch an SDXL pipeline from the Hugging Face hub
and save it as a diffusers folder of fp16 safetensors (run once, at ``docker build``).

    python -m training_scripts.save_base_model stabilityai/stable-diffusion-xl-base-1.0 /models/sdxl-base
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("repo", help="the hub repository of the SDXL base pipeline")
    parser.add_argument("target", help="the folder to save the pipeline into")
    args = parser.parse_args(argv)

    import torch
    from diffusers import StableDiffusionXLPipeline

    StableDiffusionXLPipeline.from_pretrained(
        args.repo, torch_dtype=torch.float16, variant="fp16", use_safetensors=True
    ).save_pretrained(args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
