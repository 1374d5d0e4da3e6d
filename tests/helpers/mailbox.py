"""A real SMTP server for the tests (aiosmtpd's ``Controller``, on its own thread and a free
port) that keeps every message it accepts, and answers RCPT for an address as a test scripts it
(``550`` for good, or ``451`` once, then accepts)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller

from loraflow import net

__all__ = ["Mailbox", "Received", "smtp_server"]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return cast(str, part.get_content())


class Mailbox:
    """aiosmtpd's handler: what it received, and the answers scripted per recipient."""

    def __init__(self) -> None:
        self._received: list[Received] = []
        self._answers: dict[str, list[str]] = {}  # address -> RCPT answers still to give
        self._always: dict[str, str] = {}  # address -> the RCPT answer it always gets
        self._changed = threading.Condition()

    def answer(self, address: str, reply: str, *, times: int | None = None) -> None:
        """Answer RCPT TO ``address`` with ``reply`` (e.g. ``451 4.3.0 Try again later``):
        ``times`` times, then accept; every time when ``times`` is None."""
        with self._changed:
            if times is None:
                self._always[address.lower()] = reply
            else:
                self._answers[address.lower()] = [reply] * times

    def to(self, address: str) -> list[Received]:
        """The messages delivered to ``address`` so far."""
        with self._changed:
            return [r for r in self._received if address.lower() in (a.lower() for a in r.rcpt_tos)]

    async def wait_for(self, address: str, *, count: int = 1, timeout: float = 60) -> list[Received]:
        """The messages delivered to ``address`` once there are ``count`` of them (waits on the
        server's condition, on a thread); AssertionError after ``timeout`` seconds."""

        def wait() -> list[Received]:
            with self._changed:
                if not self._changed.wait_for(lambda: len(self.to(address)) >= count, timeout):
                    raise AssertionError(f"{count} message(s) to {address} never arrived: {self.to(address)}")
                return self.to(address)

        return await asyncio.to_thread(wait)

    # -- aiosmtpd's hooks (run on the server's thread) ----------------------------------------

    async def handle_RCPT(  # aiosmtpd's names
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._changed:
            scripted = self._answers.get(address.lower())
            reply = scripted.pop(0) if scripted else self._always.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._changed:
            self._received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), cast(EmailMessage, message))
            )
            self._changed.notify_all()
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[str, Mailbox]]:
    """An SMTP server on a free loopback port: its ``smtp://`` URL and its mailbox."""
    mailbox = Mailbox()
    port = net.free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", mailbox
    finally:
        controller.stop()
