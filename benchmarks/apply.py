"""Applying a LoRA to a clip on the pre-process path: warm pipeline + LoRA swap, against
cold-loading the pipeline with that LoRA, in the same run.

    .venv/bin/python benchmarks/apply.py [--runs 5] [--steps 20]

Two small LoRAs are trained on the tiny SDXL-shaped model (2 steps each: the weights' values do
not matter for timing) and stored as the worker stores them. Then, alternating between the two:

- cold: a fresh pipeline from disk, the LoRA loaded, one keyframe generated;
- warm: the pipeline already loaded (as on a worker), the LoRA activated, one keyframe
  generated (``LocalKeyframes.generate``, the production code);
- load: load_lora_weights + set_adapters + delete_adapters alone (a LoRA's first use);
- switch: ``LocalKeyframes.activate`` between two resident LoRAs (a job's later clips).

Targets: swap under 100 ms; under 5 s added per clip. Full-size SDXL figures need a CUDA GPU
(not available on the machine these figures were taken on; the script says so).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _median_ms(samples: list[float]) -> str:
    return f"{1000 * statistics.median(samples):8.1f} ms (min {1000 * min(samples):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per keyframe")
    parser.add_argument(
        "--all-layers",
        action="store_true",
        help="LoRA on every linear/conv layer (the tiny preset) instead of attention only (production)",
    )
    args = parser.parse_args()

    import torch

    from loraflow.domain.clips import AppliedLora
    from loraflow.ml.keyframes import LocalKeyframes, LoraFileCache
    from loraflow.storage.local import LocalStorage
    from training_scripts.tiny_model import TINY_TRAINING_PARAMS, ensure_tiny_sdxl
    from training_scripts.train_lora import TrainConfig, sha256_file, train

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = str(ensure_tiny_sdxl(tmp / "models"))
        storage = LocalStorage(tmp / "storage")
        images = tmp / "images"
        images.mkdir()
        from loraflow.devstack.demo import draw_character

        for i in range(3):
            (images / f"{i}.png").write_bytes(draw_character(i))
        loras = []
        for n in range(2):
            tiny = {k: v for k, v in TINY_TRAINING_PARAMS.items() if k in TrainConfig.__dataclass_fields__}
            if not args.all_layers:
                tiny.pop("target_modules", None)
            cfg = TrainConfig(
                **{**tiny, "steps": 2, "seed": n},
                base_model=model,
                images_dir=str(images),
                output_dir=str(tmp / f"out{n}"),
            )
            path = train(cfg)
            sha = sha256_file(path)
            key = f"lora-models/bench-{n}/{sha}.safetensors"
            storage.put(key, [path.read_bytes()])
            loras.append((AppliedLora(f"bench-{n}", storage.url(key), sha, 0.8, "ohwx", "sdxl"), key))

        keyframes = LocalKeyframes(
            model, LoraFileCache(tmp / "cache", storage, max_files=4), steps=args.steps
        )
        prompt = "ohwx character, walking through a market"

        cold, warm, swap, switch = [], [], [], []
        for run in range(args.runs):
            lora, key = loras[run % 2]
            keyframes.pipeline.unload()
            t0 = time.perf_counter()
            keyframes.generate(lora, key, prompt, seed=run)
            cold.append(time.perf_counter() - t0)
        for run in range(args.runs):
            lora, key = loras[run % 2]
            t0 = time.perf_counter()
            keyframes.generate(lora, key, prompt, seed=run)
            warm.append(time.perf_counter() - t0)
            path = keyframes._cache.path(key, lora.sha256)
            with keyframes.pipeline.use() as pipe:  # warm: loaded by the runs above
                t0 = time.perf_counter()
                pipe.load_lora_weights(str(path), adapter_name="swap")
                pipe.set_adapters(["swap"], adapter_weights=[0.8])
                pipe.delete_adapters("swap")
                swap.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                keyframes.activate(pipe, *loras[(run + 1) % 2])  # both resident: a switch
                switch.append(time.perf_counter() - t0)

    layers = "every linear/conv layer" if args.all_layers else "attention projections"
    print(f"tiny SDXL-shaped model, LoRA on {layers}, {args.steps} denoising steps, {args.runs} runs each")
    print(f"  cold (load pipeline + LoRA + keyframe): {_median_ms(cold)}")
    print(f"  warm (activate LoRA + keyframe):        {_median_ms(warm)}")
    print(f"  LoRA load + set + delete (first use):   {_median_ms(swap)}")
    print(f"  switch between resident LoRAs:          {_median_ms(switch)}")
    print(f"  cold / warm = {statistics.median(cold) / statistics.median(warm):.2f}x")
    if torch.cuda.is_available():
        print("  CUDA is available, but the full-size run is not written yet; see the README.")
    else:
        print("  full-size SDXL on CUDA: no CUDA GPU here; not measured")


if __name__ == "__main__":
    main()
