"""Live LoRA events: stored by database triggers (sql/0004) and pushed with NOTIFY.

One ``EventHub`` per API process holds a single LISTEN connection and fans each notification
out to the subscribers of that LoRA, so a thousand open event streams cost one connection and
no polling. Events carry the id of their ``lora_events`` row: a client that reconnects with
``Last-Event-ID`` is replayed what it missed from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from loraflow.logging import get_logger

log = get_logger(__name__)
CHANNEL = "lora_events"
TERMINAL = "outcome"


@dataclass(frozen=True)
class LoraEvent:
    id: int
    lora_id: str
    event: str  # status | progress | outcome
    data: dict[str, Any]


class Gap:
    """Put on every queue after the LISTEN connection was lost: notifications may have been
    missed, so subscribers re-read the table from their last id."""


GAP = Gap()


class EventHub:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._subscribers: dict[str, set[asyncio.Queue[LoraEvent | Gap]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="lora-event-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_listening(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._listening.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @contextlib.contextmanager
    def subscribe(self, lora_id: str) -> Iterator[asyncio.Queue[LoraEvent | Gap]]:
        queue: asyncio.Queue[LoraEvent | Gap] = asyncio.Queue(maxsize=1000)
        self._subscribers[lora_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[lora_id].discard(queue)
            if not self._subscribers[lora_id]:
                del self._subscribers[lora_id]

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if self._listening.is_set():  # a reconnect: tell everyone to catch up
                        self._broadcast_gap()
                    self._listening.set()
                    delay = 0.5
                    async for notify in conn.notifies():
                        self._dispatch(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event_hub_disconnected", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    def _dispatch(self, payload: str) -> None:
        try:
            raw = json.loads(payload)
            event = LoraEvent(int(raw["id"]), str(raw["lora_id"]), str(raw["event"]), raw["data"])
        except (ValueError, KeyError, TypeError):
            log.warning("event_hub_bad_payload", payload=payload[:200])
            return
        for queue in list(self._subscribers.get(event.lora_id, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled client: make it re-read instead
                _drain(queue)
                queue.put_nowait(GAP)

    def _broadcast_gap(self) -> None:
        for queues in self._subscribers.values():
            for queue in queues:
                _drain(queue)
                queue.put_nowait(GAP)


def _drain(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        queue.get_nowait()


async def events_since(
    conn: psycopg.AsyncConnection[Any], lora_id: str, after: int | None
) -> list[LoraEvent]:
    """Stored events after ``after``; for a first connection (None), the latest of each kind,
    which is the LoRA's current state without its whole history."""
    if after is None:
        sql = """SELECT DISTINCT ON (event) id, event, data FROM lora_events
                  WHERE lora_model_id = %s ORDER BY event, id DESC"""
        params: list[Any] = [lora_id]
    else:
        sql = "SELECT id, event, data FROM lora_events WHERE lora_model_id = %s AND id > %s ORDER BY id"
        params = [lora_id, after]
    rows = await (await conn.execute(sql, params)).fetchall()
    events = [LoraEvent(int(r["id"]), lora_id, r["event"], r["data"]) for r in rows]
    return sorted(events, key=lambda e: e.id)
