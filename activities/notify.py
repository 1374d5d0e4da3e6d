"""The completion webhook: a signed POST when a LoRA finishes (the spec's optional e-mail, made
general). Signed the Standard Webhooks way (https://www.standardwebhooks.com): headers
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``, so receivers can use any Standard Webhooks library to verify it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import asdict

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.contracts.errors import ErrorType
from loraflow.contracts.jobs import LoraFinished
from loraflow.contracts.lora_training import WebhookDelivery
from loraflow.logging import get_logger

log = get_logger(__name__)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


class NotifyActivities:
    def __init__(self, *, url: str | None, secret: str | None) -> None:
        self._url = url
        self._secret = secret

    @activity.defn(name="send_webhook")
    def send_webhook(self, finished: LoraFinished) -> WebhookDelivery:
        """POST the outcome; not delivered when no webhook is configured. The message id is the
        same on every retry, so the receiver can drop duplicates."""
        if not self._url:
            return WebhookDelivery(delivered=False)
        body = json.dumps(
            {"type": f"lora.{finished.status}", "data": asdict(finished)}, separators=(",", ":")
        ).encode()
        message_id = f"lora-{finished.lora_id}-{finished.status}"
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": message_id,
                   "webhook-timestamp": str(timestamp)}  # fmt: skip
        if self._secret:
            headers["webhook-signature"] = sign(self._secret, message_id, timestamp, body)
        try:
            r = httpx.post(self._url, content=body, headers=headers, timeout=15)
        except httpx.HTTPError as exc:
            raise ApplicationError(f"webhook POST failed: {exc}") from exc
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise ApplicationError(f"webhook answered {r.status_code}; will retry")
        if r.status_code >= 400:
            raise ApplicationError(
                f"webhook refused the delivery with {r.status_code}",
                type=ErrorType.WEBHOOK_REJECTED,
                non_retryable=True,
            )
        log.info("webhook_delivered", lora_id=finished.lora_id, status=finished.status,
                 attempt=activity.info().attempt)  # fmt: skip
        return WebhookDelivery(delivered=True)
