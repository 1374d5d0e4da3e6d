"""The part of Replicate's HTTP API that loraflow uses, as typed models.

Written from Replicate's published OpenAPI document (``replicate-openapi.json``, "Replicate HTTP
API", served at ``https://api.replicate.com/openapi.json``); each model and rule cites the JSON
pointer it was taken from. The client (``loraflow.compute.replicate``) builds its requests with
these models and reads every answer through them; the test fake (``tests/fakes/replicate.py``)
validates every request against them and answers with them, so both sides follow the vendor's
document rather than our reading of it.

The subset: create a training of a model version, get one, list them (paginated), cancel one,
and fetch the files a training's ``output`` points at. We do not use Replicate's SDK: its
``Training.status`` is a closed Literal without ``aborted`` (replicate 1.0.7), so one aborted
training made every get, list and cancel raise.

No schema here forbids unknown properties (the document sets ``additionalProperties: false``
only on prediction requests), so neither do the models: responses keep fields we do not know.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "API_BASE",
    "FILE_HOST",
    "TERMINAL",
    "TRAININGS_PATH",
    "Problem",
    "Training",
    "TrainingMetrics",
    "TrainingOutput",
    "TrainingPage",
    "TrainingRequest",
    "TrainingStatus",
    "TrainingUrls",
    "VersionRef",
    "WebhookEvent",
    "cancel_path",
    "training_path",
]

#: ``#/servers/0/url``. Every request carries ``Authorization: Bearer <token>``
#: (``#/security``, ``#/components/securitySchemes/bearerAuth``).
API_BASE = "https://api.replicate.com/v1"

#: Where output files are served from: "``replicate.delivery`` and its subdomains"
#: (``#/paths/~1predictions~1{prediction_id}/get/description``). File URLs need the same
#: ``Authorization`` header as the API (``#/paths/~1trainings~1{training_id}/get/description``).
FILE_HOST = "replicate.delivery"


class _Model(BaseModel):
    # Unknown properties are allowed by every schema we use (see the module docstring).
    model_config = ConfigDict(extra="allow")


class TrainingStatus(enum.StrEnum):
    """``#/components/schemas/schemas_training_response/properties/status``: all six values.
    ``canceled``: by its owner or because it ran past its deadline while running; ``aborted``:
    terminated before it started running (e.g. its deadline passed while it waited)."""

    starting = "starting"
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"
    aborted = "aborted"


#: A training in one of these will not change again (the status description above, and
#: ``#/paths/~1trainings~1{training_id}/get/description``: "Terminated trainings").
TERMINAL = frozenset(
    {TrainingStatus.succeeded, TrainingStatus.failed, TrainingStatus.canceled, TrainingStatus.aborted}
)


class WebhookEvent(enum.StrEnum):
    """``#/components/schemas/schemas_training_request/properties/webhook_events_filter/items``."""

    start = "start"
    output = "output"
    logs = "logs"
    completed = "completed"


class TrainingRequest(_Model):
    """``#/components/schemas/schemas_training_request``: ``destination`` ("owner/name", an
    existing model of ours) and ``input`` (the trainer's ``train()`` arguments) are
    ``required``; a training has no idempotency key, so a repeated POST is a second training."""

    destination: str
    input: dict[str, Any]
    webhook: str | None = None
    webhook_events_filter: list[WebhookEvent] | None = None


class TrainingOutput(_Model):
    """``#/components/schemas/schemas_training_response/properties/output``. ``weights`` is a
    file URL that needs the ``Authorization`` header."""

    version: str | None = None
    weights: str | None = None


class TrainingMetrics(_Model):
    """``#/components/schemas/schemas_training_response/properties/metrics``: present once the
    training has ended; ``predict_time`` is the GPU time billed (not the wait to start)."""

    predict_time: float | None = None
    total_time: float | None = None


class TrainingUrls(_Model):
    """``#/components/schemas/schemas_training_response/properties/urls``."""

    get: str | None = None
    cancel: str | None = None


class Training(_Model):
    """``#/components/schemas/schemas_training_response``. It has no ``destination`` (only the
    request does), so a training is recognised by ``model``/``version`` and its ``input``.

    The schema requires nothing; we require ``id`` and ``status``, without which an answer is
    useless to us. ``output`` is read as nullable (Replicate sends ``null`` until success,
    though the schema says object) and so is ``logs``: neither decides anything here."""

    id: str
    status: TrainingStatus
    model: str | None = None  # "owner/name" of the trainer
    version: str | None = None  # the trainer's version id
    input: dict[str, Any] = {}  # ``additionalProperties: true``
    output: TrainingOutput | None = None
    error: str | None = None  # ``nullable``
    logs: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    metrics: TrainingMetrics | None = None
    urls: TrainingUrls | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class TrainingPage(_Model):
    """``#/paths/~1trainings/get/responses/200/content/application~1json/schema``: ``next`` and
    ``previous`` are URLs (nullable); 100 results a page, most recent first
    (``#/paths/~1trainings/get/description``)."""

    next: str | None = None
    previous: str | None = None
    results: list[Training] = []


class Problem(_Model):
    """An error answer. The document describes none for these operations; Replicate answers
    errors as RFC 7807 problem details (``title``, ``detail``, ``status``)."""

    title: str | None = None
    detail: str | None = None
    status: int | None = None


#: "owner/name:version_id", the form Replicate shows a model version in.
_VERSION = re.compile(r"^(?P<owner>[^/:\s]+)/(?P<name>[^/:\s]+):(?P<id>[0-9A-Za-z]+)$")


@dataclass(frozen=True)
class VersionRef:
    """A trainer version, and the paths of the operations on it."""

    owner: str
    name: str
    id: str

    @classmethod
    def parse(cls, text: str) -> VersionRef:
        match = _VERSION.match(text)
        if match is None:
            raise ValueError(f"not a Replicate model version (owner/name:version_id): {text!r}")
        return cls(match["owner"], match["name"], match["id"])

    @property
    def model(self) -> str:
        """As a training's ``model`` names it."""
        return f"{self.owner}/{self.name}"

    @property
    def trainings_path(self) -> str:
        """``#/paths/~1models~1{model_owner}~1{model_name}~1versions~1{version_id}~1trainings``
        (POST; 201 with the training)."""
        return f"/models/{self.owner}/{self.name}/versions/{self.id}/trainings"


def training_path(training_id: str) -> str:
    """``#/paths/~1trainings~1{training_id}`` (GET)."""
    return f"/trainings/{training_id}"


def cancel_path(training_id: str) -> str:
    """``#/paths/~1trainings~1{training_id}~1cancel`` (POST; 200 with the training)."""
    return f"/trainings/{training_id}/cancel"


#: ``#/paths/~1trainings`` (GET; a ``TrainingPage``).
TRAININGS_PATH = "/trainings"
