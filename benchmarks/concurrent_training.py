"""Wall time of N trainings at once on this machine against one alone: do local trainings slow each
other down catastrophically?

    .venv/bin/python benchmarks/concurrent_training.py [--n 2] [--steps 25]

Each training is ``python -m training_scripts.train_lora --config run.json`` on the tiny model, as
a local pod's agent runs it, with the thread count the local provider gives a pod
(``loraflow.threads.default_threads()``, i.e. ``OMP_NUM_THREADS``); ``--threads 0`` leaves torch
its own default (every core), which is what a pod got before the local provider set it.
Printed: one alone, N at once (each), and the ratio (N-at-once mean ÷ alone).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loraflow.devstack.demo import draw_character
from loraflow.threads import default_threads
from training_scripts.tiny_model import TINY_TRAINING_PARAMS, ensure_tiny_sdxl

ROOT = Path(__file__).resolve().parent.parent


def _run_config(work: Path, model: Path, steps: int, index: int) -> Path:
    images = work / f"images-{index}"
    images.mkdir(parents=True)
    for i in range(4):
        (images / f"{i}.png").write_bytes(draw_character(i))
    config = {
        **{k: v for k, v in TINY_TRAINING_PARAMS.items()},
        "base_model": str(model),
        "images_dir": str(images),
        "output_dir": str(work / f"out-{index}"),
        "steps": steps,
    }
    path = work / f"run-{index}.json"
    path.write_text(json.dumps(config))
    return path


def _train_all(configs: list[Path], threads: int) -> list[float]:
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "training_scripts.train_lora", "--config", str(c)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for c in configs
    ]
    took = []
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"a training failed (exit {proc.returncode})")
        took.append(time.monotonic() - started)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2, help="trainings at once")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument(
        "--threads", type=int, default=default_threads(), help="per training; 0: torch's default"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loraflow-bench-") as tmp:
        work = Path(tmp)
        model = ensure_tiny_sdxl(work / "models")
        configs = [_run_config(work, model, args.steps, i) for i in range(args.n + 1)]
        alone = _train_all(configs[:1], args.threads)[0]
        together = _train_all(configs[1:], args.threads)
    mean = statistics.fmean(together)
    threads = args.threads or "torch default"
    print(f"cores {os.cpu_count()}, threads per training {threads}, {args.steps} steps, tiny model")
    print(f"one alone:        {alone:6.1f} s")
    print(f"{args.n} at once, each: " + ", ".join(f"{t:.1f} s" for t in together))
    print(f"ratio (at once ÷ alone): {mean / alone:.2f}")


if __name__ == "__main__":
    main()
