"""/api/v1/lora-models/{id}/events: a LoRA's live events as server-sent events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import CallerDep, EventHubDep, PoolDep
from api.errors import ApiError, responses
from loraflow.db import as_caller, events, library
from loraflow.errors import LoraNotFound

router = APIRouter(prefix="/lora-models", tags=["lora-models"])


async def _existing_lora(lora_id: uuid.UUID, caller: CallerDep, pool: PoolDep) -> uuid.UUID:
    """A 404 before the stream starts (once it has, the status line is sent)."""
    try:
        async with as_caller(pool, caller) as conn:
            await library.get_training_status(conn, lora_id)
    except LoraNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return lora_id


def _last_event_id(
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this event (EventSource sends it)."),
    ] = None,
) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    if not last_event_id.strip().isdigit() or len(last_event_id.strip()) > 18:
        raise ApiError(400, "invalid_request", "Last-Event-ID must be an event id sent by this stream")
    return int(last_event_id)


def _sse(event: events.LoraEvent) -> ServerSentEvent:
    return ServerSentEvent(id=str(event.id), event=event.event, data=event.data)


@router.get(
    "/{lora_id}/events",
    response_class=EventSourceResponse,
    summary="Live events (server-sent): status, progress, and the outcome, which ends the stream",
    responses=responses(400, 401, 404),
)
async def stream_lora_events(
    lora_id: Annotated[uuid.UUID, Depends(_existing_lora)],
    caller: CallerDep,
    pool: PoolDep,
    hub: EventHubDep,
    after: Annotated[int | None, Depends(_last_event_id)],
) -> AsyncIterator[ServerSentEvent]:
    """Events are pushed (PostgreSQL NOTIFY), never polled. Without `Last-Event-ID` the stream
    opens with the LoRA's latest status, progress and outcome; with it, with everything after
    that event. `event: outcome` (completed or failed) is the last event."""
    key = str(lora_id)
    last = after or 0
    with hub.subscribe(key) as queue:
        catch_up = True
        while True:
            if catch_up:
                async with as_caller(pool, caller) as conn:
                    stored = await events.events_since(conn, key, after if last == 0 else last)
                pending: list[events.LoraEvent] = stored
                catch_up = False
            else:
                item = await queue.get()
                if isinstance(item, events.Gap):
                    catch_up = True
                    continue
                pending = [item]
            for event in pending:
                if event.id <= last:
                    continue
                last = event.id
                yield _sse(event)
                if event.event == events.TERMINAL:
                    return
