"""Automatic screening (loraflow.ml.screening), timed: NudeNet's detector on this machine's CPU.

    .venv/bin/python benchmarks/screening.py [--repeats 30]

Times, per image, ``ImageScreen.screen`` as the API and the worker call it: from encoded bytes
(a PNG and a JPEG: decoding included) and from a decoded PIL image (what validation passes), at
1024 px and 512 px square (skimage's astronaut photo, resized), with the session's threads as
loraflow sizes them (``default_threads()``). Also the one-time model load of a process, a
2048 px image (the size prepare_dataset screens at most) and 4000 x 3000 (a 12 MP phone
photo's size). Prints the median and p90 in ms.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image
from skimage import data

from loraflow.ml import screening
from loraflow.ml.screening import ImageScreen
from loraflow.threads import default_threads


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def _time(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    call()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    screen = ImageScreen()
    start = time.perf_counter()
    screening._shared_detector()
    print(f"model load (once per process): {(time.perf_counter() - start) * 1000:.0f} ms")
    print(f"intra-op threads: {default_threads()}")

    astronaut = Image.fromarray(data.astronaut())
    print(f"{'image':<16} {'input':<6} {'median ms':>10} {'p90 ms':>8}")
    for side in (1024, 512, 2048, 4000):
        # 4000 x 3000: a 12 MP phone photo's size.
        size = (side, 3000) if side == 4000 else (side, side)
        image = astronaut.resize(size, Image.Resampling.LANCZOS)
        inputs: dict[str, bytes | Image.Image] = {
            "PNG": _encoded(image, "PNG"),
            "JPEG": _encoded(image, "JPEG"),
            "PIL": image,
        }
        for kind, value in inputs.items():
            median, p90 = _time(lambda value=value: screen.screen(value), args.repeats)
            print(f"{size[0]} x {size[1]:<8} {kind:<6} {median:>10.1f} {p90:>8.1f}")
    found = screen.detect(astronaut.resize((1024, 1024), Image.Resampling.LANCZOS))
    print("detections at 1024 px:", ", ".join(f"{f.label} {f.score:.3f}" for f in found) or "none")


if __name__ == "__main__":
    main()
