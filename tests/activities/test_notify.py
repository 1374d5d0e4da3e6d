"""The completion webhook against a real HTTP receiver: signed (Standard Webhooks), retryable
on 5xx and 429, not on other 4xx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import NotifyActivities
from loraflow.contracts.jobs import LoraFinished
from loraflow.contracts.status import TrainingStatus

SECRET = "whsec-test"


class Receiver:
    def __init__(self) -> None:
        self.answers: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.answers.pop(0) if state.answers else 204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", state
    server.shutdown()


FINISHED = LoraFinished("lora-1", TrainingStatus.COMPLETED, None, "char1", "job-1", "file:///x.safetensors")


def test_signed_delivery_after_a_server_error(receiver: tuple[str, Receiver]) -> None:
    url, state = receiver
    state.answers = [503]
    activity = NotifyActivities(url=url, secret=SECRET).send_webhook
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as failed:
        env.run(activity, FINISHED)
    assert not failed.value.non_retryable  # Temporal retries it, with backoff
    assert env.run(activity, FINISHED).delivered is True

    (first_headers, _), (headers, body) = state.received
    assert first_headers["webhook-id"] == headers["webhook-id"] == "lora-lora-1-completed"
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    payload = json.loads(body)
    assert payload["type"] == "lora.completed" and payload["data"]["lora_id"] == "lora-1"


def test_a_refusal_is_not_retried_and_no_url_sends_nothing(receiver: tuple[str, Receiver]) -> None:
    url, state = receiver
    state.answers = [410]
    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(NotifyActivities(url=url, secret=None).send_webhook, FINISHED)
    assert refused.value.non_retryable and refused.value.type == "WebhookRejected"
    unset = ActivityEnvironment().run(NotifyActivities(url=None, secret=None).send_webhook, FINISHED)
    assert unset.delivered is False
    assert len(state.received) == 1
