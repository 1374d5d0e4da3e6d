"""Heartbeats for activities that block: how a worker killed mid-activity is noticed in seconds
(the activity's ``heartbeat_timeout``) instead of at its ``start_to_close_timeout``.

Where an activity makes progress of its own (chunks streamed, images uploaded), it heartbeats
with that progress (``beating``): a stalled stream stops the heartbeats and the attempt is
retried. Where it makes one long call with no progress to report (generating an image, one
provider request), ``heartbeating`` beats from a helper thread while the call runs: the worker's
death still stops it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from temporalio import activity

__all__ = ["HEARTBEAT_EVERY_S", "beating", "heartbeating"]

#: Often enough for the workflows' 15 s heartbeat timeouts: three beats in each, room for a busy machine.
HEARTBEAT_EVERY_S = 5.0


@contextmanager
def heartbeating(detail: str, every_s: float = HEARTBEAT_EVERY_S) -> Iterator[None]:
    """Heartbeat ``detail`` every ``every_s`` while the block runs (a sync activity's thread)."""
    stop = threading.Event()
    # The activity's context (which heartbeat reaches) lives in this thread's context variables.
    context = contextvars.copy_context()

    def beat() -> None:
        while not stop.wait(every_s):
            context.run(activity.heartbeat, detail)

    thread = threading.Thread(target=beat, name=f"heartbeat-{detail}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def beating(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks``, heartbeating the bytes passed so far with each one."""
    passed = 0
    for chunk in chunks:
        passed += len(chunk)
        activity.heartbeat(passed)
        yield chunk
