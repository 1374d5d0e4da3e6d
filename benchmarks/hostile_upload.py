"""/healthz latency while hostile uploads arrive, against /healthz with nothing else going on.

    .venv/bin/python benchmarks/hostile_upload.py [--probes 200] [--uploads 4]

Starts an embedded PostgreSQL, a Temporal dev server and `loraflow api` (one process), then
probes GET /healthz every 20 ms: first alone (the baseline), then while another thread keeps
POSTing hostile creates: ten flat 6300x6300 PNGs (39.7 MP each, just under the pixel limit,
~1.4 MB for all ten), each of which the API must decode. Before the API decoded images on
threads, one such upload froze every request for ~5 s. Prints p50/p99 for both and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loraflow import net
from loraflow.auth import issue_token
from loraflow.db import migrate
from loraflow.devstack import embedded
from loraflow.settings import DEV_JWT_SECRET, Settings

SIDE = 6300


def _hostile_pngs() -> list[bytes]:
    out = []
    for i in range(10):
        buf = io.BytesIO()
        Image.new("RGB", (SIDE, SIDE), (10 * i, 120, 200)).save(buf, format="PNG", optimize=True)
        out.append(buf.getvalue())
    return out


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _probe(url: str, n: int) -> list[float]:
    took = []
    with httpx.Client(timeout=60) as client:
        for _ in range(n):
            started = time.perf_counter()
            client.get(f"{url}/healthz")
            took.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--uploads", type=int, default=4, help="hostile uploads sent, one after another")
    args = parser.parse_args()
    pngs = _hostile_pngs()
    print(f"hostile body: 10 PNGs of {SIDE}x{SIDE}, {sum(map(len, pngs)) / 1e6:.1f} MB in all")
    with tempfile.TemporaryDirectory(prefix="loraflow-bench-") as tmp:
        work = Path(tmp)
        server, dsn = embedded.start_postgres(work / "pg")
        migrate(dsn, Settings().sql_dir, monthly_limit=100)
        temporal_port = net.free_port()
        temporal = embedded.start_temporal(db_file=work / "temporal.db", port=temporal_port, ui_port=None)
        asyncio.run(embedded.wait_for_temporal(f"127.0.0.1:{temporal_port}", "default"))
        port = net.free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "loraflow.cli", "api", "--port", str(port)],
            env=embedded.child_env(
                DATABASE_URL=dsn,
                TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
                LORAFLOW_DATA_DIR=str(work),
                LORAFLOW_LOG_LEVEL="WARNING",
                LORAFLOW_ALLOW_DEV_SECRET="1",  # noqa: S106 - a flag, not a secret
            ),
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            alone = _probe(url, args.probes)
            statuses: list[int] = []

            def attack() -> None:
                with httpx.Client(timeout=300) as client:
                    for i in range(args.uploads):
                        token = issue_token(DEV_JWT_SECRET, user_id=str(uuid.uuid4()))
                        r = client.post(
                            f"{url}/api/v1/lora-models",
                            data={"name": f"hostile {i}"},
                            files=[("images", (f"{j}.png", png, "image/png")) for j, png in enumerate(pngs)],
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        statuses.append(r.status_code)

            attacker = threading.Thread(target=attack)
            started = time.perf_counter()
            attacker.start()
            during: list[float] = []
            while attacker.is_alive():
                during += _probe(url, 10)
            attacked_s = time.perf_counter() - started
        finally:
            embedded.stop_process(api)
            embedded.stop_process(temporal)
            server.cleanup()
    a50, a99 = _percentiles(alone)
    d50, d99 = _percentiles(during)
    print(f"hostile uploads: {args.uploads} in {attacked_s:.1f} s, answered {statuses}")
    print(f"/healthz alone:          p50 {a50:7.1f} ms  p99 {a99:7.1f} ms  ({len(alone)} probes)")
    print(f"/healthz during uploads: p50 {d50:7.1f} ms  p99 {d99:7.1f} ms  ({len(during)} probes)")
    print(f"ratio during/alone: p50 {d50 / a50:.2f}  p99 {d99 / a99:.2f}")


if __name__ == "__main__":
    main()
