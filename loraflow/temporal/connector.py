"""Connecting to Temporal lazily, so the API starts (and says so in /healthz) without it."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from loraflow.errors import TemporalUnavailable
from loraflow.settings import Settings


class TemporalConnector:
    def __init__(self, settings: Settings, *, connect_timeout: float = 3.0) -> None:
        self._settings = settings
        self._timeout = connect_timeout
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        Client.connect(
                            self._settings.temporal_address,
                            namespace=self._settings.temporal_namespace,
                        ),
                        timeout=self._timeout,
                    )
                except (TimeoutError, RuntimeError, OSError) as exc:
                    raise TemporalUnavailable(
                        f"Temporal at {self._settings.temporal_address} did not answer: {exc}"
                    ) from exc
        return self._client

    async def check(self) -> None:
        client = await self.client()
        try:
            await asyncio.wait_for(client.service_client.check_health(), timeout=self._timeout)
        except Exception as exc:
            raise TemporalUnavailable(str(exc) or type(exc).__name__) from exc
