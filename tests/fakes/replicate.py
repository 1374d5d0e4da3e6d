"""A local server speaking the subset of Replicate's HTTP API that loraflow uses, as Replicate's
OpenAPI document describes it (``loraflow.compute.replicate_api`` holds the models, with their
JSON pointers): create a training of a model version (201), get, list (paginated: ``next``,
``previous``, ``results``), cancel; and the files a training's output names, which need the
``Authorization`` header like the API.

Strict on purpose: every request is validated against those models, and a bad one gets a problem
JSON (``title``, ``detail``, ``status``) with a 4xx, as Replicate answers. A training body with a
top-level field the schema does not name is refused too: Replicate's schema would let it through
and ignore it, which for us would be a silently lost intent. Training objects carry no
``destination`` (the schema has none) and every status of the enum is reachable: ``aborted``
with ``abort_before_start``, ``canceled`` by cancel, ``failed`` when the trainer fails.

Its "SDXL trainer" really trains: it fetches the ``input_images`` zip, runs train_lora.py on the
tiny model, and serves ``output.weights``, a tar of ``lora.safetensors``, ``embeddings.pti`` and
``special_params.json`` as Replicate's SDXL trainer ships it, and ``output.version``,
"destination:version_id" with a 64-character id as the document's versions have. That trainer
trains the tokens ``<s0><s1>`` in place of the trigger word; this one trains its LoRA with
captions holding a two-token stand-in word, and exports that word's token embeddings (from both
text encoders) as ``<s0><s1>``, so a prompt with ``<s0><s1>`` conditions the model exactly as
the captions did.

Predictions (``#/paths/~1predictions``, ``~1predictions~1{prediction_id}``, ``.../cancel``) of a
version one of its trainings made, or of ``base_version`` (the tiny model as stability-ai/sdxl),
really generate (``replicate_predictions.FakePredictor``) and serve PNGs as the output URLs, which
need the token. The body is ``schemas_version_prediction_request`` (``additionalProperties:
false``), the input is checked against SDXL's inputs at create, ``Prefer: wait`` keeps the create
open until the prediction ends (201) or the wait runs out (202), ``Cancel-After`` sets the
``deadline``. The document lists no error answers for predictions; as Replicate answers, an
unknown version or a bad body or input is a 422 problem, a malformed header a 400.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import secrets
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from loraflow.compute.replicate_api import (
    PREDICTION_TERMINAL,
    PREFER_WAIT,
    TERMINAL,
    Prediction,
    PredictionMetrics,
    PredictionRequest,
    PredictionUrls,
    Training,
    TrainingMetrics,
    TrainingOutput,
    TrainingPage,
    TrainingRequest,
    TrainingStatus,
    TrainingUrls,
    VersionRef,
    parse_cancel_after,
)
from loraflow.threads import default_threads
from tests.fakes.replicate_predictions import FakePrediction, FakePredictor, SdxlInput, TrainedLora

_ROOT = Path(__file__).resolve().parent.parent.parent
#: Trained in place of the trigger word: two tokens in the tiny model's byte-level tokenizer
#: ("z", "q</w>"), exported as "<s0>", "<s1>".
STAND_IN = "zq"
TOKENS = "<s0><s1>"
#: The base model's version, as a prediction names it: the tiny model plays stability-ai/sdxl.
BASE_VERSION = "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
#: "the full 64-character version ID" (``#/components/schemas/schemas_version_prediction_request``).
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")


class _StrictTrainingRequest(TrainingRequest):
    # Stricter than the schema (see the module docstring): unknown top-level fields are refused.
    model_config = ConfigDict(extra="forbid")


@dataclass
class FakeTraining:
    id: str
    model: str
    version: str
    destination: str  # what the request said; not part of the training object
    input: dict[str, Any]
    status: TrainingStatus = TrainingStatus.starting
    output: TrainingOutput | None = None
    error: str | None = None
    logs: str = ""
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    process: subprocess.Popen[bytes] | None = None
    #: The embeddings its weights hold (text_encoders_0/1), for tests to compare with.
    embeddings: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeReplicate:
    api_token: str
    workdir: Path
    base_model: str
    trainer_params: dict[str, Any]  # how this fake's "SDXL trainer" trains the tiny model
    url: str = ""  # set once served, for the URLs in answers
    trainings: dict[str, FakeTraining] = field(default_factory=dict)
    page_size: int = 100  # "It will return 100 records per page" (#/paths/~1trainings/get)
    #: No machine is free: new trainings stay ``starting`` until this is cleared.
    paused: bool = False
    #: Trainings are aborted before they start (as when their deadline passes in the queue).
    abort_before_start: bool = False
    #: The next create is made, but its answer is lost: sent after ``late_s`` ("late"), or the
    #: connection is dropped mid-answer ("drop").
    lose_next_create: Literal["late", "drop"] | None = None
    late_s: float = 3.0
    creates: int = 0  # trainings created through the API
    #: The version predictions may name besides those its trainings made.
    base_version: str = BASE_VERSION
    #: As ``lose_next_create``, for the next prediction's create.
    lose_next_prediction: Literal["late", "drop"] | None = None
    predictor: FakePredictor = field(init=False)
    _closed: bool = False

    def __post_init__(self) -> None:
        self.predictor = FakePredictor(self.base_model)

    def app(self) -> Any:
        inner = Starlette(
            routes=[
                Route(
                    "/v1/models/{owner}/{name}/versions/{version}/trainings", self._create, methods=["POST"]
                ),
                Route("/v1/trainings", self._list, methods=["GET"]),
                Route("/v1/trainings/{id}", self._get, methods=["GET"]),
                Route("/v1/trainings/{id}/cancel", self._cancel, methods=["POST"]),
                Route("/files/{id}/trained_model.tar", self._file, methods=["GET"]),
                Route("/v1/predictions", self._create_prediction, methods=["POST"]),
                Route("/v1/predictions/{id}", self._get_prediction, methods=["GET"]),
                Route("/v1/predictions/{id}/cancel", self._cancel_prediction, methods=["POST"]),
                Route("/files/{id}/out-{index:int}.png", self._prediction_file, methods=["GET"]),
            ]
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            posting = scope["type"] == "http" and scope["method"] == "POST"
            if posting and scope["path"].endswith("/trainings") and self.lose_next_create == "drop":
                self.lose_next_create = None
                await self._drop(inner, scope, receive, send)
                return
            if posting and scope["path"] == "/v1/predictions" and self.lose_next_prediction == "drop":
                self.lose_next_prediction = None
                await self._drop(inner, scope, receive, send)
                return
            await inner(scope, receive, send)

        return app

    async def _drop(self, inner: Starlette, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle the request (the training is made), then drop the connection mid-answer."""
        answered: list[Message] = []

        async def keep(message: Message) -> None:
            answered.append(message)

        await inner(scope, receive, keep)
        start = answered[0]
        await send(
            {**start, "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]}
        )
        await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
        raise ConnectionAbortedError("the fake Replicate drops this connection")  # uvicorn closes it

    # -- the API -------------------------------------------------------------------------------

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_token}":
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None

    def _json(self, t: FakeTraining) -> dict[str, Any]:
        metrics = None
        if t.status in TERMINAL and t.completed_at is not None:
            metrics = TrainingMetrics(
                predict_time=t.completed_at - t.started_at if t.started_at else None,
                total_time=t.completed_at - t.created_at,
            )
        training = Training(
            id=t.id,
            status=t.status,
            model=t.model,
            version=t.version,
            input=t.input,
            output=t.output,
            error=t.error,
            logs=t.logs,
            created_at=_time(t.created_at),
            started_at=_time(t.started_at),
            completed_at=_time(t.completed_at),
            metrics=metrics,
            urls=TrainingUrls(
                get=f"{self.url}/v1/trainings/{t.id}", cancel=f"{self.url}/v1/trainings/{t.id}/cancel"
            ),
        )
        # The schema's shape: absent until known, but ``error`` is nullable and always there.
        return {**training.model_dump(mode="json", exclude_none=True), "error": t.error, "source": "api"}

    async def _create(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        try:
            body = _StrictTrainingRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _problem(422, "Invalid request body", _errors(exc))
        if not isinstance(body.input.get("input_images"), str):
            # What the SDXL trainer's own input schema would refuse (Replicate checks it too).
            return _problem(422, "Invalid input", "input_images: a URL of a zip of images is required")
        p = request.path_params
        training = FakeTraining(
            id=uuid.uuid4().hex[:26],
            model=f"{p['owner']}/{p['name']}",
            version=p["version"],
            destination=body.destination,
            input=body.input,
        )
        self.trainings[training.id] = training
        self.creates += 1
        threading.Thread(target=self._run, args=(training,), daemon=True).start()
        if self.lose_next_create == "late":
            self.lose_next_create = None
            await asyncio.sleep(self.late_s)  # the client has given up by now
        return JSONResponse(self._json(training), status_code=201)

    async def _list(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        try:
            cursor = int(request.query_params.get("cursor", "0"))
        except ValueError:
            return _problem(400, "Invalid cursor", "cursor is not one this server gave")
        items = sorted(self.trainings.values(), key=lambda t: -t.created_at)  # most recent first
        page = items[cursor : cursor + self.page_size]
        after = cursor + self.page_size
        answer = TrainingPage(
            next=f"{self.url}/v1/trainings?cursor={after}" if after < len(items) else None,
            previous=f"{self.url}/v1/trainings?cursor={max(0, cursor - self.page_size)}" if cursor else None,
        )
        data = answer.model_dump(mode="json")
        data["results"] = [self._json(t) for t in page]
        return JSONResponse(data)

    async def _get(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        training = self.trainings.get(request.path_params["id"])
        if training is None:
            return _problem(404, "Not found", "The requested resource could not be found")
        return JSONResponse(self._json(training))

    async def _cancel(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        training = self.trainings.get(request.path_params["id"])
        if training is None:
            return _problem(404, "Not found", "The requested resource could not be found")
        if training.status not in TERMINAL:
            training.status = TrainingStatus.canceled
            training.completed_at = time.time()
            if training.process and training.process.poll() is None:
                training.process.kill()
        return JSONResponse(self._json(training))

    async def _file(self, request: Request) -> Response:
        # Replicate's file URLs need the token: "You'll need to pass the Authorization header
        # to request them" (#/paths/~1trainings~1{training_id}/get/description).
        if denied := self._denied(request):
            return denied
        path = self.workdir / request.path_params["id"] / "trained_model.tar"
        return FileResponse(path) if path.exists() else _problem(404, "Not found", "No such file")

    # -- the trainer ---------------------------------------------------------------------------

    def _run(self, training: FakeTraining) -> None:
        while self.paused and training.status == TrainingStatus.starting and not self._closed:
            time.sleep(0.05)
        if training.status != TrainingStatus.starting or self._closed:
            return  # canceled while it waited, or the test is over
        if self.abort_before_start:
            training.status, training.completed_at = TrainingStatus.aborted, time.time()
            return
        training.status, training.started_at = TrainingStatus.processing, time.time()
        try:
            self._train(training)
        except Exception as exc:  # a fake's failure shows as a failed training
            if training.status == TrainingStatus.processing:
                training.status, training.error = TrainingStatus.failed, str(exc)
        finally:
            if training.completed_at is None:
                training.completed_at = time.time()

    def _train(self, training: FakeTraining) -> None:
        work = self.workdir / training.id
        images = work / "images"
        images.mkdir(parents=True)
        with urllib.request.urlopen(training.input["input_images"]) as r:  # noqa: S310 - file:// or http
            archive = zipfile.ZipFile(io.BytesIO(r.read()))
        for member in archive.namelist():  # names are checked: a zip cannot write outside
            if "/" in member or member.startswith("."):
                raise ValueError(f"unexpected member {member!r} in input_images")
            (images / member).write_bytes(archive.read(member))
        config = {
            **self.trainer_params,
            "base_model": self.base_model,
            "images_dir": str(images),
            "output_dir": str(work / "out"),
            "trigger_word": STAND_IN,
            "steps": training.input["max_train_steps"],
            "seed": training.input["seed"],
        }
        (work / "config.json").write_text(json.dumps(config))
        with (work / "train.log").open("wb") as log:
            command = [
                sys.executable,
                "-m",
                "training_scripts.train_lora",
                "--config",
                str(work / "config.json"),
            ]
            # Its share of the cores, as a local pod gets (loraflow.threads): the suite runs two
            # processes, and torch over every core beside another training thrashes.
            env = {**os.environ, "OMP_NUM_THREADS": str(default_threads())}
            training.process = subprocess.Popen(
                command, cwd=_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            code = training.process.wait()
        training.logs = (work / "train.log").read_text(errors="replace")[-4000:]
        if training.status != TrainingStatus.processing:
            return  # canceled meanwhile
        if code != 0:
            training.status, training.error = TrainingStatus.failed, f"trainer exited {code}"
            return
        training.embeddings = self._embeddings()
        _save_pti(training.embeddings, work / "embeddings.pti")
        (work / "special_params.json").write_text(json.dumps({training.input["token_string"]: TOKENS}))
        with tarfile.open(work / "trained_model.tar", "w") as tar:
            tar.add(work / "out" / "lora.safetensors", arcname="lora.safetensors")
            tar.add(work / "embeddings.pti", arcname="embeddings.pti")
            tar.add(work / "special_params.json", arcname="special_params.json")
        training.output = TrainingOutput(
            version=f"{training.destination}:{secrets.token_hex(32)}",
            weights=f"{self.url}/files/{training.id}/trained_model.tar",
        )
        training.status, training.completed_at = TrainingStatus.succeeded, time.time()

    def _embeddings(self) -> dict[str, Any]:
        """The stand-in word's token embeddings in each text encoder, as ``text_encoders_{i}``."""
        from safetensors import safe_open
        from transformers import CLIPTokenizer

        base = Path(self.base_model)
        out = {}
        for i, (encoder, tokenizer) in enumerate(
            (("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2"))
        ):
            ids = CLIPTokenizer.from_pretrained(str(base / tokenizer))(STAND_IN).input_ids[1:-1]
            assert len(ids) == 2, f"the stand-in {STAND_IN!r} is {len(ids)} tokens, not 2"
            with safe_open(str(base / encoder / "model.safetensors"), "np") as f:
                # "text_model." prefixed or not, as transformers saved each class
                (name,) = [k for k in f.keys() if k.endswith("embeddings.token_embedding.weight")]  # noqa: SIM118
                table = f.get_tensor(name)
            out[f"text_encoders_{i}"] = table[ids].copy()
        return out

    # -- predictions ---------------------------------------------------------------------------

    def _version(self, text: str) -> tuple[str, str, TrainedLora | None] | None:
        """(model, version id, its LoRA) of a version as a prediction names it, "owner/name:id"
        or the bare id; None if it is not one this account may run (an "owner/name" alone names
        an official model, and none is). A trained version is its training's files."""
        candidates: list[tuple[str, TrainedLora | None]] = [(self.base_version, None)]
        for t in self.trainings.values():
            if t.status == TrainingStatus.succeeded and t.output and t.output.version:
                work = self.workdir / t.id
                lora = TrainedLora(
                    weights=work / "out" / "lora.safetensors",
                    embeddings=work / "embeddings.pti",
                    token_map=json.loads((work / "special_params.json").read_text()),
                )
                candidates.append((t.output.version, lora))
        for full, files in candidates:
            ref = VersionRef.parse(full)
            if text in (full, ref.id) and _VERSION_ID.match(ref.id):
                return ref.model, ref.id, files
        return None

    def _prediction_json(self, p: FakePrediction) -> dict[str, Any]:
        p = self.predictor.state(p)
        metrics = None
        if p.status in PREDICTION_TERMINAL and p.completed_at is not None:
            metrics = PredictionMetrics(
                predict_time=p.completed_at - p.started_at if p.started_at else 0.0,  # aborted: never ran
                total_time=p.completed_at - p.created_at,
            )
        output = None
        if p.images:
            output = [f"{self.url}/files/{p.id}/out-{i}.png" for i in range(len(p.images))]
        prediction = Prediction(  # every field the schema requires, or this raises
            id=p.id,
            status=p.status,
            model=p.model,
            version=p.version,
            input=p.input,
            output=output,
            error=p.error,
            data_removed=False,
            created_at=datetime.fromtimestamp(p.created_at, UTC),
            urls=PredictionUrls(
                web=f"https://replicate.com/p/{p.id}",
                get=f"{self.url}/v1/predictions/{p.id}",
                cancel=f"{self.url}/v1/predictions/{p.id}/cancel",
            ),
            logs=p.logs,
            source="api",
            started_at=_time(p.started_at),
            completed_at=_time(p.completed_at),
            deadline=_time(p.deadline),
            metrics=metrics,
        )
        # ``output`` and ``error`` are required though null until known.
        return {**prediction.model_dump(mode="json", exclude_none=True), "output": output, "error": p.error}

    async def _create_prediction(self, request: Request) -> Response:
        """``#/paths/~1predictions/post``."""
        if denied := self._denied(request):
            return denied
        prefer = request.headers.get("prefer")
        if prefer is not None and not PREFER_WAIT.match(prefer):
            # #/components/parameters/parameters_prefer_header/schema/pattern
            return _problem(400, "Invalid Prefer header", "Prefer is wait or wait=n, n from 1 to 60")
        # #/components/parameters/parameters_cancel_after_header: units h, m, s; at least 5 s
        cancel_after = request.headers.get("cancel-after")
        lifetime = None if cancel_after is None else parse_cancel_after(cancel_after)
        if cancel_after is not None and lifetime is None:
            return _problem(400, "Invalid Cancel-After header", f"not 5 s or more: {cancel_after}")
        try:
            body = PredictionRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _problem(422, "Invalid request body", _errors(exc))
        version = self._version(body.version)
        if version is None:
            return _problem(
                422,
                "Invalid version or not permitted",
                "The specified version does not exist (or perhaps you don't have permission to use it?)",
            )
        try:
            sdxl = SdxlInput.model_validate(body.input)
        except ValidationError as exc:
            return _problem(422, "Input validation failed", _errors(exc))
        model, version_id, lora = version
        created = time.time()
        prediction = FakePrediction(
            id=uuid.uuid4().hex[:26],
            model=model,
            version=version_id,
            input=body.input,
            sdxl=sdxl,
            lora=lora,
            created_at=created,
            deadline=None if lifetime is None else created + lifetime,
        )
        self.predictor.submit(prediction)
        if self.lose_next_prediction == "late":
            self.lose_next_prediction = None
            await asyncio.sleep(self.late_s)  # the client has given up by now
        if prefer is None:
            return JSONResponse(self._prediction_json(prediction), status_code=201)
        # "The request will wait up to 60 seconds for the model to run" (#/paths/~1predictions/post):
        # 201 with the final output, 202 if it "does not yet have all outputs". The header's
        # pattern lets 61 to 99 through though its description says 1 to 60: at most 60, then.
        wait = min(float(prefer.partition("=")[2] or 60), 60.0)
        ended = await asyncio.to_thread(self.predictor.wait_for, prediction.id, PREDICTION_TERMINAL, wait)
        return JSONResponse(self._prediction_json(prediction), status_code=201 if ended else 202)

    async def _get_prediction(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        prediction = self.predictor.items.get(request.path_params["id"])
        if prediction is None:
            return _problem(404, "Not found", "The requested resource could not be found")
        return JSONResponse(self._prediction_json(prediction))

    async def _cancel_prediction(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        prediction = self.predictor.items.get(request.path_params["id"])
        if prediction is None:
            return _problem(404, "Not found", "The requested resource could not be found")
        self.predictor.cancel(prediction)  # one that has ended stays as it is
        return JSONResponse(self._prediction_json(prediction))

    async def _prediction_file(self, request: Request) -> Response:
        # "Any files will be represented as HTTPS URLs. You'll need to pass the Authorization
        # header to request them" (#/paths/~1predictions~1{prediction_id}/get/description).
        if denied := self._denied(request):
            return denied
        prediction = self.predictor.items.get(request.path_params["id"])
        index = request.path_params["index"]
        if prediction is None or index >= len(prediction.images):
            return _problem(404, "Not found", "No such file")
        return Response(prediction.images[index], media_type="image/png")

    def close(self) -> None:
        self._closed = True
        self.predictor.close()
        for training in self.trainings.values():
            if training.process and training.process.poll() is None:
                training.process.kill()


def _save_pti(embeddings: dict[str, Any], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file(embeddings, str(path))


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"title": title, "detail": detail, "status": status}, status)


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
