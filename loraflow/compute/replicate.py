"""Replicate: the fallback when RunPod has no GPU. Replicate trains through its trainings API
(no pod, no agent): create a training of an SDXL trainer version, poll it, download
``output.weights``, and cancel it on cleanup. Spoken with httpx through our own models
(``replicate_api``), not Replicate's SDK, whose closed status enum rejects ``aborted``.

Create is made idempotent here: the API has no idempotency key, and a POST repeated after a lost
answer starts and bills a second training. Before each attempt, the recent trainings are searched
for one of our trainer version whose ``input_images`` has the same URL *without its query
string*: the dataset's URL is signed anew at every attempt (a Supabase signed URL's token carries
``iat``), but its path is stable and unique to the LoRA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ValidationError

from loraflow.compute.replicate_api import (
    API_BASE,
    FILE_HOST,
    TRAININGS_PATH,
    Problem,
    Training,
    TrainingPage,
    TrainingRequest,
    TrainingStatus,
    VersionRef,
    cancel_path,
    training_path,
)
from loraflow.errors import ProviderError, ProviderNotFound
from loraflow.logging import get_logger

log = get_logger(__name__)
_M = TypeVar("_M", bound=BaseModel)
#: Trainings that ended without weights: a new attempt may start afresh instead of reusing them.
_UNSUCCESSFUL = frozenset({TrainingStatus.failed, TrainingStatus.canceled, TrainingStatus.aborted})


@dataclass
class ReplicateConfig:
    api_token: str
    destination: str  # "owner/model": where Replicate pushes the trained version
    trainer_version: str = (
        "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    )
    #: Where the API is (default Replicate's): its origin, as the SDK took it; "/v1" is added
    #: unless given (the document's server URL, ``API_BASE``, includes it).
    base_url: str | None = None
    price_per_hour: float = 3.51  # an L40S on Replicate, USD
    max_attempts: int = 5
    timeout_s: float = 30.0
    #: How far back ``start`` looks for a training an earlier attempt created. Longer than any
    #: activity's retries; short enough that a LoRA trained again days later trains anew.
    reuse_window_s: float = 6 * 3600.0


def training_input(images_url: str, params: dict[str, Any]) -> dict[str, Any]:
    """loraflow's training parameters in the SDXL trainer's terms."""
    trigger = str(params.get("trigger_word", "ohwx"))
    return {
        "input_images": images_url,
        "token_string": trigger,
        "caption_prefix": f"a photo of {trigger} character, ",
        "max_train_steps": int(params.get("steps", 1000)),
        "lora_rank": int(params.get("rank", 16)),
        "lora_lr": float(params.get("learning_rate", 1e-4)),
        "resolution": int(params.get("resolution", 1024)),
        "seed": int(params.get("seed", 42)),
        "is_lora": True,
        "use_face_detection_instead": False,
    }


def without_query(url: str) -> str:
    """The URL without query and fragment: what stays the same when a URL is signed again."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def end_reason(training: Training) -> str | None:
    """Why a training ended without weights, in words for the user; None if it did not."""
    match training.status:
        case TrainingStatus.failed:
            return f"the trainer failed: {training.error}" if training.error else "the trainer failed"
        case TrainingStatus.canceled:
            return "it was canceled on Replicate (by its owner, or because it ran past its deadline)"
        case TrainingStatus.aborted:
            return "Replicate aborted it before it started (no machine took it before its deadline)"
    return None


def billed_seconds(training: Training, *, since: float) -> float:
    """The seconds Replicate bills: ``metrics.predict_time`` once known (time running, not
    waiting); an aborted training never ran; otherwise the time since ``since`` (an upper
    bound, as the old estimate was)."""
    if training.metrics is not None and training.metrics.predict_time is not None:
        return max(0.0, training.metrics.predict_time)
    if training.status == TrainingStatus.aborted:
        return 0.0
    start = training.started_at.timestamp() if training.started_at else since
    end = training.completed_at.timestamp() if training.completed_at else time.time()
    return max(0.0, end - start)


class ReplicateTrainer:
    name = "replicate"

    def __init__(
        self,
        config: ReplicateConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._cfg = config
        self._sleep = sleep
        self.version = VersionRef.parse(config.trainer_version)
        self._base = _api_base(config.base_url)
        self._http = httpx.Client(
            base_url=self._base,
            headers={"Authorization": f"Bearer {config.api_token}"},
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
        )

    @property
    def price_per_hour(self) -> float:
        return self._cfg.price_per_hour

    def close(self) -> None:
        self._http.close()

    # -- trainings ---------------------------------------------------------------------------

    def start(self, images_url: str, params: dict[str, Any]) -> str:
        """Start the training of ``images_url``, or return the one an earlier attempt started."""
        request = TrainingRequest(destination=self._cfg.destination, input=training_input(images_url, params))
        dataset = without_query(images_url)
        since = time.time() - self._cfg.reuse_window_s
        delay = 1.0
        for attempt in range(1, self._cfg.max_attempts + 1):
            if found := self._find(dataset, since):
                log.info("replicate_training_found", training_id=found.id, status=str(found.status))
                return found.id
            try:
                r = self._call(
                    "POST",
                    self.version.trainings_path,
                    json=request.model_dump(mode="json", exclude_none=True),
                    retry=False,  # a repeated POST is a second training: find first, always
                )
                created = _parse(r, Training)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                # The answer was lost (timeout, dropped connection, 5xx) or refused for now
                # (429): it may or may not exist; the next attempt looks before it creates.
                log.warning("replicate_create_unanswered", error=str(exc), attempt=attempt)
            else:
                log.info("replicate_training_created", training_id=created.id)
                return created.id
            self._sleep(delay)
            delay = min(delay * 2, 30.0)
        if found := self._find(dataset, since):
            return found.id
        raise ProviderError("Replicate did not accept the training")

    def get(self, training_id: str) -> Training:
        return _parse(self._call("GET", training_path(training_id)), Training)

    def cancel(self, training_id: str) -> Training:
        """Ask for the training to end; returns its state (terminal once Replicate confirms).
        A training that already ended (``aborted`` included) is left as it is."""
        current = self.get(training_id)
        if current.terminal:
            return current
        try:
            # Cancelling is idempotent on Replicate's side, so unlike create it may be retried.
            answer = _parse(self._call("POST", cancel_path(training_id)), Training)
        except ProviderNotFound:
            raise
        except ProviderError as exc:
            if exc.retryable:
                raise
            # Refused, perhaps because it ended in between: its state says.
            log.warning("replicate_cancel_refused", training_id=training_id, error=str(exc))
            return self.get(training_id)
        return answer if answer.terminal else self.get(training_id)

    def trainings(self, *, since: float | None = None) -> Iterator[Training]:
        """Every training of this account, most recent first (so paging stops at the first
        one created before ``since``), following ``next`` page after page."""
        url: str | None = TRAININGS_PATH
        seen: set[str] = set()
        while url is not None and url not in seen:
            seen.add(url)
            page = _parse(self._call("GET", url), TrainingPage)
            for training in page.results:
                if since is not None and training.created_at and training.created_at.timestamp() < since:
                    return
                yield training
            url = page.next
            if url is not None and not self._same_origin(url):
                # The token goes with every request: never to a host that is not the API's.
                raise ProviderError(f"Replicate's next page is on another host: {url}", retryable=False)

    def list_active(self, *, max_age_s: float = 7 * 86400.0) -> list[Training]:
        """Trainings that have not ended, of this account (the sweeper decides which are ours)."""
        return [t for t in self.trainings(since=time.time() - max_age_s) if not t.terminal]

    # -- files -------------------------------------------------------------------------------

    @contextmanager
    def open_file(self, url: str) -> Iterator[httpx.Response]:
        """Stream a file a training's ``output`` names, with the ``Authorization`` header it
        needs. The token is sent only to the API's host and to Replicate's file host; httpx
        drops it if a redirect leaves that origin."""
        if not (self._same_origin(url) or _is_file_host(url)):
            raise ProviderError(f"not a Replicate file URL, the token stays here: {url}", retryable=False)
        timeout = httpx.Timeout(self._cfg.timeout_s, read=300.0)
        with self._http.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            yield r

    # -- internals ---------------------------------------------------------------------------

    def _find(self, dataset: str, since: float) -> Training | None:
        """The training of our trainer version on this dataset (by its URL without the query),
        unless it ended without weights."""
        for training in self.trainings(since=since):
            images = training.input.get("input_images")
            if (
                training.model == self.version.model
                and training.version == self.version.id
                and isinstance(images, str)
                and without_query(images) == dataset
                and training.status not in _UNSUCCESSFUL
            ):
                return training
        return None

    def _same_origin(self, url: str) -> bool:
        other = httpx.URL(url)
        if other.is_relative_url:
            return True
        return (other.scheme, other.host, other.port) == (self._base.scheme, self._base.host, self._base.port)

    def _call(self, method: str, url: str, *, json: Any = None, retry: bool = True) -> httpx.Response:
        """One API call; with ``retry``, transport errors, 429 and 5xx are tried again."""
        delay = 1.0
        for attempt in range(1, self._cfg.max_attempts + 1):
            last = attempt == self._cfg.max_attempts or not retry
            try:
                r = self._http.request(method, url, json=json)
            except httpx.TransportError as exc:
                if last:
                    raise ProviderError(f"Replicate did not answer {method} {url}: {exc!r}") from exc
                log.warning("replicate_unreachable", method=method, url=url, error=repr(exc), attempt=attempt)
            else:
                if r.status_code < 400:
                    return r
                error = _error(r)
                if last or not error.retryable:
                    raise error
                log.warning("replicate_retry", method=method, url=url, status=r.status_code, attempt=attempt)
                delay = max(delay, _retry_after(r))
            self._sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")  # the last attempt returns or raises


def _api_base(base_url: str | None) -> httpx.URL:
    base = (base_url or API_BASE).rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return httpx.URL(base + "/")  # the slash makes httpx append request paths to it


def _parse(r: httpx.Response, model: type[_M]) -> _M:
    try:
        return model.model_validate_json(r.content)
    except ValidationError as exc:
        raise ProviderError(f"Replicate's answer is not a {model.__name__}: {exc}") from exc


def _error(r: httpx.Response) -> ProviderError:
    try:
        problem = Problem.model_validate(r.json())
        detail = problem.detail or problem.title or r.text[:300]
    except (ValueError, ValidationError):
        detail = r.text[:300]
    message = f"Replicate answered {r.status_code} to {r.request.method} {r.request.url.path}: {detail}"
    if r.status_code == 404:
        return ProviderNotFound(message)
    # 429 and 5xx pass; any other 4xx is our request (or token) and will not change by itself.
    return ProviderError(message, retryable=r.status_code == 429 or r.status_code >= 500)


def _retry_after(r: httpx.Response) -> float:
    try:
        return min(float(r.headers.get("retry-after", "0")), 60.0)
    except ValueError:
        return 0.0


def _is_file_host(url: str) -> bool:
    parsed = httpx.URL(url)
    return parsed.scheme == "https" and (parsed.host == FILE_HOST or parsed.host.endswith("." + FILE_HOST))
