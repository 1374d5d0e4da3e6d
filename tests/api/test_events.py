"""GET /lora-models/{id}/events: server-sent events pushed from PostgreSQL NOTIFY, read by a
real HTTP client; a reconnect with Last-Event-ID resumes where the stream broke off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from tests.conftest import User
from tests.helpers.loras import new_lora


async def _events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif not line.startswith(":"):  # ":" lines are keep-alive comments
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


def _service(pg_dsn: str, sql: str, params: list[Any]) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(sql, params)


async def test_events_are_pushed_and_a_reconnect_resumes(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool, pg_dsn: str
) -> None:
    _, lora_id = await new_lora(pool)
    viewer = make_user()  # the library is public: anyone signed in may watch
    url = f"/api/v1/lora-models/{lora_id}/events"
    seen: list[dict[str, Any]] = []
    async with http.stream("GET", url, headers=viewer.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = _events(response)
        first = await asyncio.wait_for(anext(stream), 10)
        assert (first["event"], first["data"]) == ("status", {"status": "pending"})
        seen.append(first)

        # The worker's writes, as the worker makes them; each arrives without a poll.
        _service(pg_dsn, "UPDATE lora_models SET training_status = 'training' WHERE id = %s", [lora_id])
        seen.append(await asyncio.wait_for(anext(stream), 10))
        _service(
            pg_dsn,
            "INSERT INTO lora_training_jobs (lora_model_id, training_progress, estimated_remaining) "
            "VALUES (%s, 40, 90)",
            [lora_id],
        )
        seen.append(await asyncio.wait_for(anext(stream), 10))
    assert [(e["event"], e["data"]) for e in seen[1:]] == [
        ("status", {"status": "training"}),
        ("progress", {"progress": 40, "estimated_remaining": 90}),
    ]

    # While nobody listens, it fails.
    _service(
        pg_dsn,
        "UPDATE lora_models SET training_status = 'failed', error_message = 'cancelled' WHERE id = %s",
        [lora_id],
    )
    # EventSource reconnects with the last id it saw: it gets what it missed, then the stream ends.
    resumed = {**viewer.headers, "Last-Event-ID": seen[1]["id"]}
    async with http.stream("GET", url, headers=resumed) as response:
        rest = [e async for e in _events(response)]
    assert [e["event"] for e in rest] == ["progress", "outcome"]
    assert rest[0]["id"] == seen[2]["id"]
    assert rest[1]["data"]["status"] == "failed" and rest[1]["data"]["error_message"] == "cancelled"
    assert int(rest[1]["id"]) > int(rest[0]["id"])


async def test_unknown_lora_and_bad_last_event_id(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    user = make_user()
    r = await http.get(
        "/api/v1/lora-models/00000000-0000-4000-8000-000000000000/events", headers=user.headers
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    _, lora_id = await new_lora(pool)
    r = await http.get(
        f"/api/v1/lora-models/{lora_id}/events", headers={**user.headers, "Last-Event-ID": "abc"}
    )
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["error"]["message"]
