"""GET /api/v1/lora-models under load, against the same queries run directly (the floor).

    .venv/bin/python benchmarks/api_list.py [--rows 100000] [--requests 2000] [--concurrency 1 16]
    .venv/bin/python benchmarks/api_list.py --baseline 1a3c06e   # and that commit's API, same run
    .venv/bin/python benchmarks/api_list.py --explain     # each scenario's plan, no load

Seeds an embedded PostgreSQL (or DATABASE_URL, which it writes to!) with --rows LoRAs, starts
`loraflow api` as its own process, and drives it from this process at each concurrency. Then
runs the page's SQL through psycopg at the same concurrency, the way the API runs it (as the
caller, under RLS): `direct` is the query that builds the response body in PostgreSQL (what the
API runs today), `rows` the same page and total fetched as rows (what the API ran before it built
its JSON in PostgreSQL). With --baseline REF, the API of that commit (a git worktree of it) runs
against the same database in the same run: the before/after table. Prints p50/p99 latency and
requests/s for each, and API p50 / direct p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loraflow import net
from loraflow.auth import issue_token
from loraflow.db import Caller, as_caller, create_pool, library, migrate
from loraflow.db.library import Sort
from loraflow.devstack import embedded
from loraflow.settings import DEV_JWT_SECRET, Settings

SCENARIOS: dict[str, dict[str, object]] = {
    "default page": {},
    "search 'wizard'": {"search": "wizard"},
    "status=completed": {"status": "completed"},
    "sort=popular": {"sort": "popular"},
    "sort=top_rated": {"sort": "top_rated"},
    "creator=<a user>": {"creator": "00000000-0000-4000-8000-000000000007"},
    "created_after (1 d)": {"created_after": "1 day"},
    "base_model=sdxl": {"base_model": "sdxl"},
    "min_rating=4.5": {"min_rating": 4.5},
    "sort=trending": {"sort": "trending"},
}


def narrow_of(params: dict[str, object]) -> library.LibraryFilter:
    """The scenario's filters as the API builds them (``created_after`` given as an age)."""
    after = params.get("created_after")
    return library.LibraryFilter(
        creator=uuid.UUID(str(params["creator"])) if "creator" in params else None,
        created_after=datetime.now(UTC) - timedelta(days=1) if after else None,
        base_model=params.get("base_model"),  # type: ignore[arg-type]
        min_rating=params.get("min_rating"),  # type: ignore[arg-type]
    )


def api_params(params: dict[str, object]) -> dict[str, object]:
    if params.get("created_after"):
        return {**params, "created_after": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    return params


SEED_SQL = """
SET session_replication_role = replica;  -- seed without per-row triggers (limit, updated_at)
INSERT INTO auth.users (id, email)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid, 'user' || u || '@example.com'
  FROM generate_series(1, {users}) u
ON CONFLICT DO NOTHING;
INSERT INTO lora_models (user_id, name, description, training_status, usage_count, created_at,
                         storage_path, storage_url, file_size, rating_count, rating_sum, uses_30d)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(1 + i % {users}), 12, '0'))::uuid,
       (ARRAY['Grumpy','Cheerful','Silent','Cyberpunk','Ancient','Tiny','Neon','Lost'])[1 + i % 8]
         || ' ' || (ARRAY['Wizard','Knight','Girl','Robot','Cat','Pilot','Witch','Monk','Bard',
                          'Ranger','Queen','Farmer','Diver','Clown','Chef','Spy','Nurse','Baker',
                          'Hacker','Dragon'])[1 + (i / 8) % 20]
         || ' ' || i,
       CASE WHEN i % 3 = 0 THEN 'a character from the seed set, number ' || i END,
       (ARRAY['completed','completed','completed','failed','pending','training'])[1 + i % 6],
       (random() * 1000)::int,
       now() - (i || ' minutes')::interval,
       'lora-models/x.safetensors', 'https://example/x.safetensors', 1000,
       i % 7, (i % 7) * (1 + i % 5), (random() * 50)::int
  FROM generate_series(1, {rows}) i;
SET session_replication_role = origin;
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def drive(call, requests: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def one_client() -> None:
        for _ in remaining:
            t = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*[one_client() for _ in range(concurrency)])
    return latencies, time.perf_counter() - start


async def bench_api(
    url: str, token: str, params: dict[str, object], n: int, c: int
) -> tuple[list[float], float]:
    """aiohttp, not httpx: the client shares the 2 CPUs with the API, and httpx's own time per
    request (about a millisecond here) would be counted as the API's."""
    query = {k: str(v) for k, v in api_params(params).items()}
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, connector=connector
    ) as http:

        async def call() -> None:
            async with http.get("/api/v1/lora-models", params=query) as r:
                await r.read()
                if r.status != 200:
                    raise ApiAnswered(r.status)

        await drive(call, min(200, n), c)  # warm up
        return await drive(call, n, c)


class ApiAnswered(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"the API answered {status}")
        self.status = status


async def bench_direct(
    dsn: str, params: dict[str, object], n: int, c: int, *, as_rows: bool = False
) -> tuple[list[float], float]:
    pool = create_pool(dsn, min_size=c, max_size=c)
    await pool.open(wait=True)
    uid = str(uuid.uuid4())
    caller = Caller(uid, None, "authenticated", {"sub": uid, "role": "authenticated"})
    status, search = params.get("status"), params.get("search")
    sort, narrow = Sort(params.get("sort", "recent")), narrow_of(params)
    page, values, count, count_values = library.page_query(
        status=status,  # type: ignore[arg-type]
        search=search,  # type: ignore[arg-type]
        sort=sort,
        narrow=narrow,
    )

    async def call() -> None:
        async with as_caller(pool, caller) as conn:
            if as_rows:  # the rows the API used to turn into JSON itself
                await (await conn.execute(page, [*values, 50, 0])).fetchall()
                await (await conn.execute(count, count_values)).fetchone()
            else:
                await library.list_page_json(
                    conn,
                    status=status,  # type: ignore[arg-type]
                    search=search,  # type: ignore[arg-type]
                    sort=sort,
                    limit=50,
                    offset=0,
                    narrow=narrow,
                    viewer=uuid.UUID(uid),
                )

    try:
        await drive(call, min(200, n), c)
        return await drive(call, n, c)
    finally:
        await pool.close()


def start_api(
    dsn: str, port: int, log: Path, workers: int, tree: Path | None = None
) -> subprocess.Popen[bytes]:
    """`loraflow api` from this checkout, or from ``tree`` (the baseline's worktree)."""
    extra = {"PYTHONPATH": str(tree)} if tree else {}
    env = embedded.child_env(
        **extra,
        DATABASE_URL=dsn,
        LORAFLOW_LOG_LEVEL="WARNING",
        LORAFLOW_DB_POOL_MIN=str(16 // workers),
        LORAFLOW_DB_POOL_MAX=str(16 // workers),
        LORAFLOW_API_WORKERS=str(workers),
        LORAFLOW_ALLOW_DEV_SECRET="1",  # noqa: S106 - a flag, not a secret
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "loraflow.cli", "api", "--port", str(port)],
        env=env,
        cwd=tree,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"API did not start: {log.read_text()[-2000:]}")


def explain(dsn: str) -> None:
    """Each scenario's page query, EXPLAIN ANALYZE'd as the caller: the index it uses and its time."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, params in SCENARIOS.items():
            page, values, _, _ = library.page_query(
                status=params.get("status"),  # type: ignore[arg-type]
                search=params.get("search"),  # type: ignore[arg-type]
                sort=Sort(params.get("sort", "recent")),
                narrow=narrow_of(params),
            )
            with conn.transaction():
                conn.execute("SET LOCAL role authenticated")
                plan = [
                    row[0]
                    for row in conn.execute(
                        psycopg.sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ") + page, [*values, 50, 0]
                    ).fetchall()
                ]
            scans = [line.strip() for line in plan if "Scan" in line]
            took = next(line for line in plan if line.startswith("Execution Time"))
            print(f"{name:<22} {took:<28} {' | '.join(scans)}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--baseline", metavar="REF", help="also benchmark the API of this git commit")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--explain", action="store_true", help="print each scenario's plan; no load")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="loraflow-bench-"))
    server = None
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        server, dsn = embedded.start_postgres(workdir / "pg")
    migrate(dsn, Settings().sql_dir)
    t = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM lora_models").fetchone()[0]
        if have < args.rows:
            seed = SEED_SQL.format(rows=int(args.rows - have), users=int(max(1, args.rows // 5)))
            for statement in filter(str.strip, seed.split(";\n")):
                conn.execute(statement.encode())
            conn.execute("SELECT loraflow_recount_library()")  # the seed skipped the triggers
        conn.execute("VACUUM ANALYZE lora_models")
        total = conn.execute("SELECT count(*) FROM lora_models").fetchone()[0]
    print(f"seeded: {total} LoRAs in {time.perf_counter() - t:.1f}s  ({workdir})")
    if args.explain:
        explain(dsn)
        if server is not None:
            server.cleanup()
        return

    port = net.free_port()
    api = start_api(dsn, port, workdir / "api.log", args.api_workers)
    apis = {"API": f"http://127.0.0.1:{port}"}
    baseline = None
    if args.baseline:
        tree = workdir / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.baseline], check=True,
                       capture_output=True)  # fmt: skip
        base_port = net.free_port()
        baseline = start_api(dsn, base_port, workdir / "baseline-api.log", args.api_workers, tree)
        apis = {f"API@{args.baseline[:7]}": f"http://127.0.0.1:{base_port}", **apis}
    token = issue_token(DEV_JWT_SECRET, user_id=str(uuid.uuid4()), email="bench@example.com")
    print(
        f"\n{args.requests} requests per scenario and path, {args.api_workers} API worker process(es), "
        f"{os.cpu_count()} CPUs shared by client, API and PostgreSQL"
    )
    try:
        for concurrency in args.concurrency:
            print(f"\nconcurrency {concurrency}")
            header = (
                f"{'scenario':<20} {'path':<12} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}   p50 / direct p50"
            )
            print(header)
            print("-" * len(header))
            for name, params in SCENARIOS.items():
                direct = await bench_direct(dsn, params, args.requests, concurrency)
                results = [("direct", *direct)]
                results.append(
                    ("rows", *await bench_direct(dsn, params, args.requests, concurrency, as_rows=True))
                )
                for label, url in apis.items():
                    try:
                        results.append(
                            (label, *await bench_api(url, token, params, args.requests, concurrency))
                        )
                    except ApiAnswered as exc:  # the baseline lacks this filter or sort
                        print(f"{name:<20} {label:<12} {'answers ' + str(exc.status):>8}")
                floor = statistics.median(direct[0])
                for label, lat, secs in results:
                    ratio = "" if label == "direct" else f"   {statistics.median(lat) / floor:.2f}x"
                    print(
                        f"{name:<20} {label:<12} {percentile(lat, 50):>8.2f} {percentile(lat, 99):>8.2f} "
                        f"{len(lat) / secs:>8.0f}{ratio}"
                    )
    finally:
        embedded.stop_process(api)
        if baseline is not None:
            embedded.stop_process(baseline)
            subprocess.run(["git", "worktree", "remove", "--force", str(workdir / "baseline")], check=False)
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
