"""Replicate: the fallback when RunPod has no GPU. Replicate trains through its trainings API
(no pod, no agent): create a training of an SDXL trainer version, poll it, download
``output.weights``, and cancel it on cleanup. The version a training pushes runs through the
predictions API (``ReplicatePredictor``), so validation and keyframes of a LoRA trained there need
no GPU of ours either. Spoken with httpx through our own models (``replicate_api``), not
Replicate's SDK, whose closed status enum rejects ``aborted``.

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
    PREDICTIONS_PATH,
    TRAININGS_PATH,
    Prediction,
    PredictionRequest,
    PredictionStatus,
    Problem,
    Training,
    TrainingPage,
    TrainingRequest,
    TrainingStatus,
    VersionRef,
    cancel_after,
    cancel_path,
    prediction_cancel_path,
    prediction_path,
    training_path,
)
from loraflow.errors import ProviderError, ProviderNotFound
from loraflow.logging import get_logger

log = get_logger(__name__)
_M = TypeVar("_M", bound=BaseModel)
_Run = TypeVar("_Run", Training, Prediction)  # what Replicate runs, and cancels
#: Trainings that ended without weights: a new attempt may start afresh instead of reusing them.
_UNSUCCESSFUL = frozenset({TrainingStatus.failed, TrainingStatus.canceled, TrainingStatus.aborted})
#: How ``ReplicatePredictor.wait`` polls: a small image is done in seconds, a queue can take minutes.
_FIRST_POLL_S = 0.5
_MAX_POLL_S = 5.0


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
    #: A prediction's lifetime from its creation (``Cancel-After``) when its caller names none.
    #: A create retried after a lost answer may make a second prediction whose id we never
    #: learn; with a lifetime, no such copy waits in a queue or runs on past it.
    prediction_deadline_s: float = 900.0


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


def prediction_end_reason(prediction: Prediction) -> str | None:
    """Why a prediction ended without output, in words (with Replicate's error text); None if
    it did not end so."""
    match prediction.status:
        case PredictionStatus.failed:
            return f"the model failed: {prediction.error}" if prediction.error else "the model failed"
        case PredictionStatus.canceled:
            return "it was canceled on Replicate (by its creator, or because it ran past its deadline)"
        case PredictionStatus.aborted:
            return "Replicate aborted it before it started (no machine took it before its deadline)"
    return None


class _ReplicateClient:
    """What the trainings and predictions clients share: the token and the API's address, one
    call with its retries, errors as ``ProviderError``, and file downloads that keep the token
    on Replicate's hosts."""

    def __init__(
        self,
        config: ReplicateConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._cfg = config
        self._sleep = sleep
        self._base = _api_base(config.base_url)
        self._http = httpx.Client(
            base_url=self._base,
            headers={"Authorization": f"Bearer {config.api_token}"},
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
        )

    def _cancel(self, path: str, model: type[_Run], current: Callable[[], _Run], **ids: str) -> _Run:
        """POST a cancel and return the run's state (terminal once Replicate confirms). Cancelling
        is idempotent on Replicate's side, so unlike a create it may be retried; a refusal (it
        perhaps ended in between) answers with its state as it is now."""
        try:
            answer = _parse(self._call("POST", path), model)
        except ProviderNotFound:
            raise
        except ProviderError as exc:
            if exc.retryable:
                raise
            log.warning("replicate_cancel_refused", error=str(exc), **ids)
            return current()
        return answer if answer.terminal else current()

    def close(self) -> None:
        self._http.close()

    @contextmanager
    def open_file(self, url: str) -> Iterator[httpx.Response]:
        """Stream a file a training's or prediction's ``output`` names, with the
        ``Authorization`` header it needs. The token is sent only to the API's host and to
        Replicate's file host; httpx drops it if a redirect leaves that origin."""
        if not (self._same_origin(url) or _is_file_host(url)):
            raise ProviderError(f"not a Replicate file URL, the token stays here: {url}", retryable=False)
        timeout = httpx.Timeout(self._cfg.timeout_s, read=300.0)
        with self._http.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            yield r

    def _same_origin(self, url: str) -> bool:
        other = httpx.URL(url)
        if other.is_relative_url:
            return True
        return (other.scheme, other.host, other.port) == (self._base.scheme, self._base.host, self._base.port)

    def _call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        retry: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One API call; with ``retry``, transport errors, 429 and 5xx are tried again."""
        delay = 1.0
        for attempt in range(1, self._cfg.max_attempts + 1):
            last = attempt == self._cfg.max_attempts or not retry
            try:
                r = self._http.request(method, url, json=json, headers=headers)
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


class ReplicateTrainer(_ReplicateClient):
    name = "replicate"

    def __init__(
        self,
        config: ReplicateConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(config, sleep=sleep, transport=transport)
        self.version = VersionRef.parse(config.trainer_version)

    @property
    def price_per_hour(self) -> float:
        return self._cfg.price_per_hour

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
        return self._cancel(
            cancel_path(training_id), Training, lambda: self.get(training_id), training_id=training_id
        )

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


class ReplicatePredictor(_ReplicateClient):
    """Predictions of a model version (``POST /predictions``): images of a LoRA trained on
    Replicate, whose trained version holds it, or of the base model.

    Create is retried like any call (transport errors, 429 with its ``Retry-After``, 5xx; never
    another 4xx). The API has no idempotency key, so a create whose answer was lost and is
    tried again may make a second prediction: one more image, billed once, is the cost of not
    looking. Every prediction is created with a lifetime (``Cancel-After``), so no copy waits
    in a queue or runs on past it."""

    def start(self, version: str, input: dict[str, Any], *, cancel_after_s: float | None = None) -> str:
        """Create a prediction of ``version`` ("owner/name:version_id" or the bare id) with the
        model's ``input``; returns its id. It is canceled by Replicate ``cancel_after_s``
        (default ``prediction_deadline_s``, at least 5 s) after its creation if not done."""
        request = PredictionRequest(version=version, input=input)
        lifetime = self._cfg.prediction_deadline_s if cancel_after_s is None else cancel_after_s
        r = self._call(
            "POST",
            PREDICTIONS_PATH,
            json=request.model_dump(mode="json", exclude_none=True),
            headers={"Cancel-After": cancel_after(lifetime)},
        )
        created = _parse(r, Prediction)
        log.info("replicate_prediction_created", prediction_id=created.id, status=str(created.status))
        return created.id

    def get(self, prediction_id: str) -> Prediction:
        return _parse(self._call("GET", prediction_path(prediction_id)), Prediction)

    def wait(
        self,
        prediction_id: str,
        *,
        timeout_s: float,
        on_poll: Callable[[Prediction], None] | None = None,
    ) -> Prediction:
        """Poll until the prediction ends, or ``timeout_s`` passes: then it is returned as it
        stands (check ``terminal``; it goes on running until canceled or its deadline).
        ``on_poll`` sees every state read, so an activity can heartbeat while it waits."""
        deadline = time.monotonic() + timeout_s
        delay = _FIRST_POLL_S
        while True:
            current = self.get(prediction_id)
            if on_poll is not None:
                on_poll(current)
            left = deadline - time.monotonic()
            if current.terminal or left <= 0:
                return current
            self._sleep(min(delay, left))
            delay = min(delay * 1.5, _MAX_POLL_S)

    def cancel(self, prediction_id: str) -> Prediction:
        """Ask for the prediction to end; returns its state (terminal once Replicate confirms).
        Cancelling is idempotent, so unlike a training's create it is retried; one that already
        ended is left as it is."""
        return self._cancel(
            prediction_cancel_path(prediction_id), Prediction, lambda: self.get(prediction_id),
            prediction_id=prediction_id,
        )  # fmt: skip

    def output_bytes(self, prediction: Prediction) -> list[bytes]:
        """The files a succeeded prediction's ``output`` names (one URL, or a list of them, as
        SDXL's images), downloaded with the token. Replicate removes them after an hour."""
        if prediction.status != PredictionStatus.succeeded:
            reason = prediction_end_reason(prediction) or f"it is {prediction.status}"
            raise ProviderError(
                f"Replicate prediction {prediction.id} has no output: {reason}", retryable=False
            )
        if prediction.data_removed or prediction.output is None:
            raise ProviderError(
                f"Replicate prediction {prediction.id}'s output was removed (it keeps it an hour)",
                retryable=False,
            )
        output = prediction.output
        urls = [output] if isinstance(output, str) else output
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ProviderError(
                f"Replicate prediction {prediction.id}'s output is not file URLs: {output!r:.200}",
                retryable=False,
            )
        files = []
        for url in urls:
            with self.open_file(url) as r:
                files.append(r.read())
        return files

    def generate_image(
        self,
        version: str,
        *,
        prompt: str,
        seed: int,
        lora_scale: float,
        timeout_s: float,
        on_poll: Callable[[Prediction], None] | None = None,
        **extra: Any,
    ) -> bytes:
        """One image of an SDXL version (Replicate's ``stability-ai/sdxl`` inputs: ``prompt``,
        ``seed``, ``lora_scale``, ``num_outputs``; ``extra`` adds others, e.g. ``width``,
        ``height``, ``num_inference_steps``, ``guidance_scale``). A trained version puts its
        trained tokens in for the trigger word itself, so ``prompt`` names the trigger word.

        Raises ProviderError when the prediction fails, is canceled or aborted (with
        Replicate's error text), or has not ended within ``timeout_s`` (it is canceled then)."""
        model_input = {"prompt": prompt, "seed": seed, "lora_scale": lora_scale, "num_outputs": 1, **extra}
        prediction_id = self.start(version, model_input, cancel_after_s=timeout_s)
        done = self.wait(prediction_id, timeout_s=timeout_s, on_poll=on_poll)
        if not done.terminal:
            try:
                self.cancel(prediction_id)
            except ProviderError as exc:  # its Cancel-After ends it anyway
                log.warning("replicate_prediction_cancel_failed", prediction_id=prediction_id, error=str(exc))
            raise ProviderError(
                f"Replicate prediction {prediction_id} did not end within {timeout_s:g} s "
                f"(it was {done.status})"
            )
        if done.status != PredictionStatus.succeeded:
            # A model's failure (an error in its inputs, say) comes back the same if tried
            # again; a canceled or aborted one may not.
            raise ProviderError(
                f"Replicate prediction {prediction_id} ended without an image: {prediction_end_reason(done)}",
                retryable=done.status != PredictionStatus.failed,
            )
        images = self.output_bytes(done)
        if not images:
            raise ProviderError(f"Replicate prediction {prediction_id} succeeded without an image")
        return images[0]


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
