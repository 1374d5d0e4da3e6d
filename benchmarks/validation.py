"""Validation's judges and where generation runs, measured (issue #12).

    .venv/bin/python benchmarks/validation.py [--steps 120]

1. **Verdicts on the tiny model.** Trains the demo's character (a face over a red shirt on blue)
   and a different character (green shirt on yellow) with the demo's preset, then generates the
   three validation prompts with no LoRA, with the demo character's LoRA and with the other one
   (same seeds), and asks the demo's judge (the pixel judge: the tiny model's images are too
   crude for a face or an embedding) whether each shows the demo character. The judge must pass
   the demo LoRA and refuse the other two.
0. **The VAE.** Mean colours of the two characters' drawings, and of the same drawings through a
   random VAE of the tiny model's architecture and through the fitted one it ships with.
2. **The face judge on real faces** (scikit-image's bundled photos): the astronaut against
   variants of her photo and against the cameraman; dlib's same-person threshold is 0.6.
3. **Wall time of generation.** Today's in-worker path (loraflow.ml.validation: per prompt the
   base image then the LoRA image, one at a time) against the pod's batched /generate path
   (training_scripts.generate: every prompt's base image in one batch, then every prompt's LoRA
   image), same prompts, seeds and steps, same machine; then the pod path's real load (the
   control and three checkpoints per prompt). On a pod the GPU makes batching pay more.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image, ImageDraw

from loraflow.contracts.lora_training import DEFAULT_VALIDATION_PROMPTS
from loraflow.devstack.demo import draw_character
from loraflow.ml.judges import FaceJudge, PixelJudge, shows_character
from training_scripts.agent_protocol import GenerateRequest
from training_scripts.generate import ValidationGenerator
from training_scripts.tiny_model import TINY_TRAINING_PARAMS, ensure_tiny_sdxl

TRIGGER = "ohwx"


def draw_other(i: int, size: int = 384) -> bytes:
    """Another character: a green shirt on a yellow backdrop, no face."""
    im = Image.new("RGB", (size, size), (220, 200 - 10 * i, 40))
    draw = ImageDraw.Draw(im)
    dx = 10 * i
    draw.rectangle((80 + dx, 120, 300 + dx, size), fill=(30, 160, 60))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def train(model: Path, images: list[bytes], out: Path, steps: int) -> Path:
    (out / "images").mkdir(parents=True)
    for i, data in enumerate(images):
        (out / "images" / f"{i}.png").write_bytes(data)
    config = {**TINY_TRAINING_PARAMS, "steps": steps, "trigger_word": TRIGGER, "base_model": str(model),
              "images_dir": str(out / "images"), "output_dir": str(out / "lora")}  # fmt: skip
    (out / "run.json").write_text(json.dumps(config))
    subprocess.run(
        [sys.executable, "-m", "training_scripts.train_lora", "--config", str(out / "run.json")],
        check=True, stdout=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    return out / "lora" / "lora.safetensors"


def verdicts(model: Path, work: Path, steps: int, gen_steps: int) -> None:
    print(f"\n## 1. Verdicts on the tiny model ({steps} training steps, {gen_steps} denoising steps)")
    demo = [draw_character(i) for i in range(4)]
    demo_lora = train(model, demo, work / "demo", steps)
    other_lora = train(model, [draw_other(i) for i in range(4)], work / "other", steps)
    generator = ValidationGenerator(str(model))
    prompts = [p.format(trigger=TRIGGER) for p in DEFAULT_VALIDATION_PROMPTS]
    requests = [
        GenerateRequest(f"v{i}", p, 1000 + i, ["demo", "other"], gen_steps) for i, p in enumerate(prompts)
    ]
    made = generator.generate(requests, {"demo": demo_lora, "other": other_lora}, work / "generated")
    judge = PixelJudge()
    references = judge.references([Image.open(io.BytesIO(d)).convert("RGB") for d in demo])
    print(f"judge: {judge.name} (margin {judge.margin}, floor {judge.floor}); references: the demo character")
    print(f"{'prompt':<44} {'no LoRA':>8} {'demo LoRA':>10} {'other LoRA':>11}  shows (demo / other)")
    passed = {"demo": 0, "other": 0}
    for request in requests:
        scores = {}
        for image in made[request.request_id]:
            with Image.open(work / "generated" / request.request_id / image.file) as opened:
                scores[image.checkpoint] = references.score(opened.convert("RGB"))
        shown = {name: shows_character(judge, scores[name], scores["base"]) for name in ("demo", "other")}
        for name in passed:
            passed[name] += shown[name]
        print(f"{request.prompt:<44} {scores['base']:>8.4f} {scores['demo']:>10.4f} {scores['other']:>11.4f}"
              f"  {shown['demo']} / {shown['other']}")  # fmt: skip
    print(f"prompts that show the demo character: demo LoRA {passed['demo']}/3, "
          f"other LoRA {passed['other']}/3 (2 of 3 pass a LoRA)")  # fmt: skip


def vae_colours(model: Path) -> None:
    print("\n## 0. Why the tiny model's VAE is fitted: mean RGB of each character, and through each VAE")
    import numpy as np
    import torch
    from diffusers import AutoencoderKL

    from training_scripts.tiny_vae import tiny_vae

    torch.manual_seed(0)
    vaes = {"random VAE": tiny_vae(64), "fitted VAE": AutoencoderKL.from_pretrained(model, subfolder="vae")}
    for name, draw in (("demo character", draw_character), ("other character", draw_other)):
        pixels = np.stack(
            [
                np.asarray(Image.open(io.BytesIO(draw(i))).convert("RGB").resize((64, 64)), dtype=np.float32)
                for i in range(4)
            ]
        )
        x = torch.from_numpy(pixels / 127.5 - 1).permute(0, 3, 1, 2)
        line = f"{name:<16} image {np.round(pixels.mean(axis=(0, 1, 2)) / 255, 3)}"
        with torch.no_grad():
            for vae_name, vae in vaes.items():
                back = vae.decode(vae.encode(x).latent_dist.mean).sample
                line += f"  {vae_name} {np.round(((back.mean(dim=(0, 2, 3)) + 1) / 2).numpy(), 3)}"
        print(line)


def faces() -> None:
    print("\n## 2. The face judge on real faces (scikit-image's photos; distance = 1 - score)")
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    camera = Image.fromarray(data.camera()).convert("RGB").crop((150, 0, 400, 250))
    judge = FaceJudge()
    references = judge.references([astronaut])
    variants = {
        "astronaut, flipped": astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "astronaut, cropped": astronaut.crop((100, 0, 400, 300)).resize((256, 256)),
        "astronaut, rotated 5°": astronaut.rotate(5),
        "astronaut, greyscale": astronaut.convert("L").convert("RGB"),
        "cameraman (another person)": camera,
    }
    for name, image in variants.items():
        started = time.perf_counter()
        score = references.score(image)
        ms = (time.perf_counter() - started) * 1000
        distance = "no face" if score is None else f"{1 - score:.3f}"
        verdict = "same person" if score is not None and score >= judge.floor else "not her"
        print(f"{name:<30} distance {distance:>7}  {verdict:<12} ({ms:.0f} ms)")


def wall_time(model: Path, work: Path, gen_steps: int) -> None:
    print(f"\n## 3. Generation wall time, {gen_steps} denoising steps, this machine's CPU")
    from loraflow.contracts.lora_training import ValidationRequest
    from loraflow.ml.validation import Validator
    from loraflow.storage.local import LocalStorage

    lora = work / "demo" / "lora" / "lora.safetensors"
    storage = LocalStorage(work / "storage")
    storage.put("lora-models/bench/lora.safetensors", [lora.read_bytes()])
    storage.put("lora-staging/bench/dataset/0.png", [draw_character(0)])
    prompts = [p.format(trigger=TRIGGER) for p in DEFAULT_VALIDATION_PROMPTS]

    validator = Validator(str(model))
    validator.score(  # warm: the pipeline loads once per worker
        ValidationRequest("bench", 0, prompts[0], 1000, "lora-models/bench/lora.safetensors",
                          ["lora-staging/bench/dataset/0.png"]), storage)  # fmt: skip
    started = time.perf_counter()
    for i, prompt in enumerate(prompts):
        request = ValidationRequest("bench", i, prompt, 1000 + i, "lora-models/bench/lora.safetensors",
                                    ["lora-staging/bench/dataset/0.png"])  # fmt: skip
        validator.score(request, storage)
    in_worker = time.perf_counter() - started

    generator = ValidationGenerator(str(model))
    files = {"final": lora, "a": lora, "b": lora}
    generator.generate([GenerateRequest("warm", prompts[0], 1, ["final"], gen_steps)], files, work / "warm")
    started = time.perf_counter()
    generator.generate(
        [GenerateRequest(f"p{i}", p, 1000 + i, ["final"], gen_steps) for i, p in enumerate(prompts)],
        files, work / "pod1",
    )  # fmt: skip
    on_pod = time.perf_counter() - started
    started = time.perf_counter()
    three = [
        GenerateRequest(f"q{i}", p, 1000 + i, ["a", "b", "final"], gen_steps) for i, p in enumerate(prompts)
    ]
    generator.generate(three, files, work / "pod3")
    on_pod_3 = time.perf_counter() - started
    print("(the in-worker path's steps are fixed at 20 in loraflow.ml.validation)")
    print(f"in the worker, 3 prompts x (control + LoRA), one at a time (20 steps): {in_worker:6.2f} s")
    print(f"on the pod, the same 6 images, batched ({gen_steps} steps):            {on_pod:6.2f} s")
    print(f"on the pod, 3 prompts x (control + 3 checkpoints), batched:     {on_pod_3:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=int(TINY_TRAINING_PARAMS["steps"]))
    parser.add_argument("--gen-steps", type=int, default=20)
    args = parser.parse_args()
    model = ensure_tiny_sdxl(Path(".loraflow/models"))
    vae_colours(model)
    with tempfile.TemporaryDirectory() as tmp:
        verdicts(model, Path(tmp), args.steps, args.gen_steps)
        faces()
        wall_time(model, Path(tmp), args.gen_steps)


if __name__ == "__main__":
    main()
