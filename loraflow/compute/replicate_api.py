"""The part of Replicate's HTTP API that loraflow uses, as typed models.

Written from Replicate's published OpenAPI document (``replicate-openapi.json``, "Replicate HTTP
API", served at ``https://api.replicate.com/openapi.json``); each model and rule cites the JSON
pointer it was taken from. The client (``loraflow.compute.replicate``) builds its requests with
these models and reads every answer through them; the test fake (``tests/fakes/replicate.py``)
validates every request against them and answers with them, so both sides follow the vendor's
document rather than our reading of it.

The subset: create a training of a model version, get one, list them (paginated), cancel one,
and fetch the files a training's ``output`` points at; create a prediction of a model version,
get one, cancel one, and fetch the files its ``output`` names. We do not use Replicate's SDK: its
``Training.status`` is a closed Literal without ``aborted`` (replicate 1.0.7), so one aborted
training made every get, list and cancel raise.

Only the prediction request forbids unknown properties (``additionalProperties: false``), and so
only ``PredictionRequest`` does; the other models keep fields we do not know.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "API_BASE",
    "FILE_HOST",
    "MIN_CANCEL_AFTER_S",
    "PREDICTIONS_PATH",
    "PREDICTION_TERMINAL",
    "PREFER_WAIT",
    "TERMINAL",
    "TRAININGS_PATH",
    "Prediction",
    "PredictionMetrics",
    "PredictionRequest",
    "PredictionStatus",
    "PredictionUrls",
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
    "cancel_after",
    "cancel_path",
    "parse_cancel_after",
    "prediction_cancel_path",
    "prediction_path",
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


# -- predictions ---------------------------------------------------------------------------------


class PredictionStatus(enum.StrEnum):
    """``#/components/schemas/schemas_prediction_response/properties/status``: six values, though
    the list in ``#/paths/~1predictions~1{prediction_id}/get/description`` names only five;
    ``aborted``: "terminated before it started running (for example, when a deadline is reached
    before the prediction starts)"; ``canceled``: by its creator or at its deadline while running."""

    starting = "starting"
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"
    aborted = "aborted"


#: A prediction in one of these will not change again ("Terminated predictions",
#: ``#/paths/~1predictions~1{prediction_id}/get/description``, and ``aborted`` from the enum).
PREDICTION_TERMINAL = frozenset(
    {PredictionStatus.succeeded, PredictionStatus.failed, PredictionStatus.canceled, PredictionStatus.aborted}
)


class PredictionRequest(_Model):
    """``#/components/schemas/schemas_version_prediction_request``, the body of
    ``POST /predictions`` (``#/paths/~1predictions/post``): ``version`` and ``input`` are
    ``required`` and ``additionalProperties: false``, so an unknown field is refused here too.

    ``version`` is "owner/name" (official models only), "owner/name:version_id" or the bare
    version_id, the id being 64 characters (``.../properties/version/description``). ``input``
    is the model's own input (its version's ``openapi_schema``), not described by this document.
    ``stream`` is deprecated (``.../properties/stream``) and left out."""

    model_config = ConfigDict(extra="forbid")

    version: str
    input: dict[str, Any]
    webhook: str | None = None
    webhook_events_filter: list[WebhookEvent] | None = None  # same four events as a training's


class PredictionMetrics(_Model):
    """``#/components/schemas/schemas_prediction_response/properties/metrics``
    (``additionalProperties: true``): ``total_time`` is in the schema; ``predict_time``, the
    CPU/GPU seconds billed, only in ``#/paths/~1predictions~1{prediction_id}/get/description``
    ("Terminated predictions ... will include a ``metrics`` object with a ``predict_time``")."""

    predict_time: float | None = None
    total_time: float | None = None


class PredictionUrls(_Model):
    """``#/components/schemas/schemas_prediction_response/properties/urls``: ``web``, ``get``
    and ``cancel`` are ``required``; ``stream`` only for models that stream."""

    web: str
    get: str
    cancel: str
    stream: str | None = None


class Prediction(_Model):
    """``#/components/schemas/schemas_prediction_response``. Unlike a training's, this schema
    has a ``required`` list, and the model keeps to it: ``id``, ``model``, ``version``, ``input``,
    ``output``, ``data_removed``, ``error``, ``status``, ``created_at``, ``urls`` must be present
    (``output`` and ``error`` may be ``null``: ``output`` has no type, ``error`` is ``nullable``).

    ``output`` is whatever the model returns; files are HTTPS URLs that need the
    ``Authorization`` header, and are removed after an hour (``data_removed`` then, and
    ``output`` is ``null``), per ``#/paths/~1predictions~1{prediction_id}/get/description``.
    ``version`` is the version's id, or ``"hidden"`` for official models (its ``oneOf``)."""

    id: str
    status: PredictionStatus
    model: str
    version: str
    input: dict[str, Any]
    output: Any
    error: str | None
    data_removed: bool
    created_at: datetime
    urls: PredictionUrls
    logs: str | None = None
    source: str | None = None  # "web" or "api"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: "The absolute time at which the prediction will be automatically canceled if it has not
    #: completed": set by ``Cancel-After``.
    deadline: datetime | None = None
    deployment: str | None = None
    metrics: PredictionMetrics | None = None

    @property
    def terminal(self) -> bool:
        return self.status in PREDICTION_TERMINAL


#: ``#/paths/~1predictions/post`` (201, or 202 when it "does not yet have all outputs"; both
#: with the prediction). The model-scoped ``#/paths/~1models~1{model_owner}~1{model_name}~1predictions``
#: is for official models, which have no versions; a trained LoRA is a version, so not that one.
PREDICTIONS_PATH = "/predictions"


def prediction_path(prediction_id: str) -> str:
    """``#/paths/~1predictions~1{prediction_id}`` (GET; 200 with the prediction)."""
    return f"/predictions/{prediction_id}"


def prediction_cancel_path(prediction_id: str) -> str:
    """``#/paths/~1predictions~1{prediction_id}~1cancel`` (POST; 200 with the prediction)."""
    return f"/predictions/{prediction_id}/cancel"


#: ``#/components/parameters/parameters_prefer_header/schema/pattern``: ``Prefer: wait`` or
#: ``wait=n`` keeps the create open until the model finishes, 60 s at most
#: (``#/paths/~1predictions/post/description``). The header's description says n is 1 to 60;
#: its pattern, kept as written, also lets 61 to 99 through.
PREFER_WAIT = re.compile(r"^wait(=([1-9]|[1-9][0-9]|60))?$")

#: ``#/components/parameters/parameters_cancel_after_header/description``: "The minimum
#: allowed duration is 5 seconds."
MIN_CANCEL_AFTER_S = 5.0
_DURATION = re.compile(r"^(?=\d)(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")


def cancel_after(seconds: float) -> str:
    """A ``Cancel-After`` header value (``#/components/parameters/parameters_cancel_after_header``)
    for a lifetime of ``seconds`` from creation, rounded up, and at least the minimum."""
    return f"{max(math.ceil(seconds), int(MIN_CANCEL_AFTER_S))}s"


def parse_cancel_after(text: str) -> float | None:
    """Seconds from a ``Cancel-After`` value ("30", "90s", "5m", "1h30m45s": units ``h``, ``m``,
    ``s``, seconds when none), or None if malformed or under the 5 s minimum."""
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    seconds = 3600 * int(match["h"] or 0) + 60 * int(match["m"] or 0) + int(match["s"] or 0)
    return float(seconds) if seconds >= MIN_CANCEL_AFTER_S else None
