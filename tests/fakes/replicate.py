"""A local server speaking the subset of Replicate's API that ``ReplicateTrainer`` (through the
``replicate`` client) uses: create a training of a model version with a destination, get, list,
cancel. Its "SDXL trainer" really trains: it fetches the ``input_images`` zip, runs
train_lora.py on the tiny model, and serves the result as ``output.weights`` (a tar holding the
.safetensors, as Replicate's SDXL trainer ships it)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class FakeTraining:
    id: str
    version: str
    destination: str
    input: dict[str, Any]
    status: str = "starting"
    output: dict[str, Any] | None = None
    error: str | None = None
    logs: str = ""
    created_at: float = field(default_factory=time.time)
    process: subprocess.Popen[bytes] | None = None


@dataclass
class FakeReplicate:
    api_token: str
    workdir: Path
    base_model: str
    trainer_params: dict[str, Any]  # how this fake's "SDXL trainer" trains the tiny model
    url: str = ""  # set once served, for output URLs
    trainings: dict[str, FakeTraining] = field(default_factory=dict)
    lose_next_create: bool = False

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/v1/models/{owner}/{name}/versions/{version}/trainings", self._create, methods=["POST"]
                ),
                Route("/v1/trainings", self._list, methods=["GET"]),
                Route("/v1/trainings/{id}", self._get, methods=["GET"]),
                Route("/v1/trainings/{id}/cancel", self._cancel, methods=["POST"]),
                Route("/files/{id}/trained_model.tar", self._file, methods=["GET"]),
            ]
        )

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_token}":
            return JSONResponse({"title": "Unauthenticated", "detail": "Invalid token", "status": 401}, 401)
        return None

    def _json(self, t: FakeTraining) -> dict[str, Any]:
        return {
            "id": t.id, "model": t.version.split(":")[0], "version": t.version.split(":")[-1],
            "destination": t.destination, "status": t.status, "input": t.input, "output": t.output,
            "error": t.error, "logs": t.logs, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "urls": {"get": f"{self.url}/v1/trainings/{t.id}",
                     "cancel": f"{self.url}/v1/trainings/{t.id}/cancel"},
        }  # fmt: skip

    async def _create(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        body = await request.json()
        p = request.path_params
        training = FakeTraining(
            id=uuid.uuid4().hex[:20],
            version=f"{p['owner']}/{p['name']}:{p['version']}",
            destination=body["destination"],
            input=body["input"],
        )
        self.trainings[training.id] = training
        threading.Thread(target=self._train, args=(training,), daemon=True).start()
        if self.lose_next_create:
            self.lose_next_create = False
            import asyncio

            await asyncio.sleep(3)
        return JSONResponse(self._json(training), status_code=201)

    async def _list(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        items = sorted(self.trainings.values(), key=lambda t: -t.created_at)
        return JSONResponse({"previous": None, "next": None, "results": [self._json(t) for t in items]})

    async def _get(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        training = self.trainings.get(request.path_params["id"])
        if training is None:
            return JSONResponse({"title": "Not found", "status": 404, "detail": "Not found"}, 404)
        return JSONResponse(self._json(training))

    async def _cancel(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        training = self.trainings[request.path_params["id"]]
        if training.status not in ("succeeded", "failed", "canceled"):
            training.status = "canceled"
            if training.process and training.process.poll() is None:
                training.process.kill()
        return JSONResponse(self._json(training))

    async def _file(self, request: Request) -> Response:
        path = self.workdir / request.path_params["id"] / "trained_model.tar"
        return FileResponse(path) if path.exists() else Response(status_code=404)

    # -- the trainer ------------------------------------------------------------------------

    def _train(self, training: FakeTraining) -> None:
        work = self.workdir / training.id
        images = work / "images"
        images.mkdir(parents=True)
        try:
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
                "trigger_word": training.input["token_string"],
                "steps": training.input["max_train_steps"],
                "seed": training.input["seed"],
            }
            (work / "config.json").write_text(json.dumps(config))
            training.status = "processing"
            with (work / "train.log").open("wb") as log:
                command = [
                    sys.executable,
                    "-m",
                    "training_scripts.train_lora",
                    "--config",
                    str(work / "config.json"),
                ]
                training.process = subprocess.Popen(command, cwd=_ROOT, stdout=log, stderr=subprocess.STDOUT)
                code = training.process.wait()
            if training.status == "canceled":
                return
            if code != 0:
                training.status, training.error = "failed", f"trainer exited {code}"
                return
            with tarfile.open(work / "trained_model.tar", "w") as tar:
                tar.add(work / "out" / "lora.safetensors", arcname="lora.safetensors")
                tar.add(work / "config.json", arcname="training_config.json")
            training.output = {
                "version": f"{training.destination}:{uuid.uuid4().hex}",
                "weights": f"{self.url}/files/{training.id}/trained_model.tar",
            }
            training.status = "succeeded"
        except Exception as exc:  # a fake's failure shows as a failed training
            training.status, training.error = "failed", str(exc)

    def close(self) -> None:
        for training in self.trainings.values():
            if training.process and training.process.poll() is None:
                training.process.kill()
