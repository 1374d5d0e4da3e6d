"""Request bodies have a size limit, answered with 413 before they are read: a 200 MB JSON body
must not take the API's memory with it. Pure ASGI, so it sees the body as it streams: a
``Content-Length`` over the limit is refused at once, a chunked body once it passes it."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from loraflow.contracts import limits

__all__ = ["JSON_BODY_MAX", "MULTIPART_BODY_MAX", "BodySizeLimit"]

#: Every JSON body the API takes is a few fields.
JSON_BODY_MAX = 64 * 1024
#: The most images a request may carry, at their limit each, and the form around them.
MULTIPART_BODY_MAX = (limits.MAX_IMAGES + 1) * limits.MAX_IMAGE_BYTES + 1024 * 1024


#: After a streamed body passes its limit, up to this much more of it is read and dropped (for
#: up to DRAIN_S) before the 413 goes out: a client still sending when the server answers and
#: closes gets a connection reset, and a reset can discard the answer it was about to read. Past
#: either bound the answer goes out anyway: a body that never ends costs at most this much.
DRAIN_MAX = 4 * 1024 * 1024
DRAIN_S = 2.0


class _TooLarge(Exception):
    pass


async def _drain(receive: Receive) -> None:
    drained = 0
    with anyio.move_on_after(DRAIN_S):
        while drained <= DRAIN_MAX:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _limit_for(scope: Scope) -> int:
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return MULTIPART_BODY_MAX if content_type == b"multipart/form-data" else JSON_BODY_MAX


def _too_large(limit: int) -> Exception:
    return _TooLarge(f"the request body is over {limit} bytes")


class BodySizeLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = _limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:  # too late to answer; the connection ends
                raise
            await _drain(receive)
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"the request body is over the {limit}-byte limit for this content type",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
