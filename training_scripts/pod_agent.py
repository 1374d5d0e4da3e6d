"""The pod agent: the one HTTP service that runs inside every training pod.

RunPod starts it as the trainer image's entrypoint; the local compute provider starts the same
agent as a subprocess. So the workflow speaks one protocol to every provider, defined once in
``training_scripts/agent_protocol.py`` (images in, ``/train``, long-polled ``/progress``, the
``/artifact`` out, then ``/generate`` for validation images on the same GPU; every request
but ``/livez`` carries the pod's bearer token).

The pod watches itself (a dead-man switch): reaping pods only from the server side is a single
point of failure, since a pod whose workflow is gone would bill until the next sweep, or forever
if the worker fleet is down. When no authenticated request has reached the agent for
``LORAFLOW_AGENT_IDLE_S`` seconds (the workflow's long polls count while they wait), or once the
hard deadline ``LORAFLOW_AGENT_DEADLINE`` (unix seconds, set at creation) passes, the agent stops
its trainer and removes its own pod: inside RunPod through the v2 API (``RUNPOD_POD_ID`` and the
pod-scoped ``RUNPOD_API_KEY`` are set there), elsewhere by writing ``ended.json`` and exiting.

    python -m training_scripts.pod_agent --port 8080 --workdir /workspace
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from training_scripts.agent_protocol import (
    ARTIFACT_PATH,
    DEADLINE_ENV,
    FINAL_CHECKPOINT,
    GENERATE_PATH,
    HEALTHZ_PATH,
    IDLE_ENV,
    IMAGE_NAME,
    LIVEZ_PATH,
    LOG_PATH,
    LOG_TAIL_BYTES,
    MAX_IMAGE_BYTES,
    PROGRESS_PATH,
    REQUEST_ID,
    SHA256_HEADER,
    TOKEN_ENV,
    TRAIN_PATH,
    AgentState,
    Checkpoint,
    GenerateRequest,
    Generation,
    GenerationState,
    Progress,
    TrainRequest,
    checkpoints_of,
    generation_from_json,
    progress_from_json,
)
from training_scripts.train_lora import ARTIFACT_NAME, CHECKPOINTS_DIR, EVENT_PREFIX, KOHYA_ARTIFACT_NAME

#: Requests to /generate that arrive within this long of each other are generated as one batch
#: (the workflow's validations arrive together, a few milliseconds apart).
GATHER_S = 0.3

_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
_PROGRESS_FIELDS = frozenset(f.name for f in dataclasses.fields(Progress))


class Agent:
    """The agent's state: one training run per pod, persisted so a restart tells the truth."""

    def __init__(self, workdir: Path, base_model: str | None) -> None:
        self.workdir = workdir
        self.images = workdir / "images"
        self.output = workdir / "output"
        self.base_model = base_model
        self.images.mkdir(parents=True, exist_ok=True)
        self.output.mkdir(parents=True, exist_ok=True)
        self._state_file = workdir / "progress.json"
        self._changed = asyncio.Condition()
        self._process: asyncio.subprocess.Process | None = None
        self._train_request: TrainRequest | None = None
        self.progress = Progress()
        if self._state_file.exists():
            self.progress = progress_from_json(json.loads(self._state_file.read_text()))
            if self.progress.state == AgentState.TRAINING:  # the trainer died with the previous agent
                self.progress.state = AgentState.FAILED
                self.progress.error = "the pod agent restarted during training"
                self.progress.version += 1

    async def update(self, **fields: Any) -> None:
        async with self._changed:
            self.progress = dataclasses.replace(self.progress, **fields, version=self.progress.version + 1)
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(self.progress)))
            tmp.replace(self._state_file)
            self._changed.notify_all()

    async def wait_for_change(self, after: int, timeout: float, *, terminal_only: bool) -> Progress:
        def ready() -> bool:
            p = self.progress
            if p.version <= after:
                return False
            return not terminal_only or AgentState(p.state).finished

        async with self._changed:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            return self.progress

    async def start(self, request: TrainRequest) -> tuple[int, Progress]:
        if self.progress.run_id is not None:
            if self.progress.run_id == request.run_id:
                return 200, self.progress  # a retried request: the run is already under way (or done)
            raise HTTPException(409, f"this pod already trained run {self.progress.run_id!r}")
        if not self.base_model:
            raise HTTPException(500, "LORAFLOW_BASE_MODEL is not set in the pod")
        if not any(p.suffix != ".txt" for p in self.images.iterdir()):
            raise HTTPException(409, "no images uploaded")
        reserved = {"base_model", "images_dir", "output_dir"} & set(request.params)
        if reserved:
            raise HTTPException(400, f"the agent sets {sorted(reserved)} itself")
        config = {
            **request.params,
            "base_model": self.base_model,
            "images_dir": str(self.images),
            "output_dir": str(self.output),
        }
        run_file = self.workdir / "run.json"
        run_file.write_text(json.dumps(config))
        await self.update(
            state=AgentState.TRAINING, run_id=request.run_id, phase="starting", started_at=time.time()
        )
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "training_scripts.train_lora", "--config", str(run_file),
            stdout=asyncio.subprocess.PIPE,
            stderr=(self.workdir / "train.log").open("ab"),
            cwd=_PROJECT_ROOT,
            preexec_fn=_die_with_agent,
        )  # fmt: skip
        asyncio.get_running_loop().create_task(self._follow(self._process))
        return 202, self.progress

    async def _follow(self, process: asyncio.subprocess.Process) -> None:
        """Read the trainer's event lines into the progress state until it exits."""
        failure: str | None = None
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith(EVENT_PREFIX):
                continue
            try:
                event = json.loads(line[len(EVENT_PREFIX) :])
            except json.JSONDecodeError:
                continue
            kind = event.pop("event", None)
            if kind == "phase":
                await self.update(
                    phase=event.get("phase"), **{k: event[k] for k in ("total_steps",) if k in event}
                )
            elif kind == "progress":
                await self.update(**{k: event[k] for k in _PROGRESS_FIELDS if k in event})
            elif kind == "checkpoint":
                saved = Checkpoint(event["name"], event["step"], event["sha256"], event["size"])
                await self.update(checkpoints=[*self.progress.checkpoints, dataclasses.asdict(saved)])
            elif kind == "done":
                steps = self.progress.total_steps
                final = Checkpoint(FINAL_CHECKPOINT, steps, event["sha256"], event["size"])
                await self.update(
                    state=AgentState.SUCCEEDED, phase="done", sha256=event["sha256"], size=event["size"],
                    eta_s=0, finished_at=time.time(),
                    checkpoints=[*self.progress.checkpoints, dataclasses.asdict(final)],
                )  # fmt: skip
            elif kind == "failed":
                failure = str(event.get("reason", "training failed"))
        code = await process.wait()
        if self.progress.state == AgentState.TRAINING:
            await self.update(
                state=AgentState.FAILED,
                error=failure or f"trainer exited with status {code}",
                finished_at=time.time(),
            )

    def checkpoint_file(self, name: str) -> Path:
        """The file of a checkpoint the trainer announced (404 for any other name)."""
        if name not in {c.name for c in checkpoints_of(self.progress)}:
            raise HTTPException(404, f"no checkpoint {name!r}")
        if name == FINAL_CHECKPOINT:
            return self.output / ARTIFACT_NAME
        return self.output / CHECKPOINTS_DIR / f"{name}.safetensors"

    def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()

    async def abandon(self, reason: str) -> None:
        """The dead-man switch fired: stop the trainer and say why, for anyone who still asks."""
        self.stop()
        if not AgentState(self.progress.state).finished:
            error = f"the pod ended itself: {reason}"
            await self.update(state=AgentState.FAILED, error=error, finished_at=time.time())


class Generations:
    """The validation images asked of this pod (``/generate``), by request id. Requests that
    arrive together run as one batch on one loaded pipeline; each result is kept on disk (a
    retried request, even after an agent restart, gets it again without generating again)."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.root = agent.workdir / "generated"
        self.root.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Generation] = {}
        for saved in self.root.glob("*/generation.json"):
            job = generation_from_json(json.loads(saved.read_text()))
            if GenerationState(job.state) == GenerationState.SUCCEEDED:
                self._jobs[job.request_id] = job
        self._pending: list[GenerateRequest] = []
        self._changed = asyncio.Condition()
        self._runner: asyncio.Task[None] | None = None
        self._generator: Any = None
        self._preparing: asyncio.Future[None] | None = None

    def _the_generator(self) -> Any:
        from training_scripts.generate import ValidationGenerator

        if self._generator is None:
            self._generator = ValidationGenerator(str(self._agent.base_model))
        return self._generator

    def prepare(self) -> None:
        """Load the validation pipeline into memory while training runs (once, in a thread)."""
        if self._preparing is None and self._agent.base_model:
            self._preparing = asyncio.ensure_future(asyncio.to_thread(self._the_generator().prepare))
            self._preparing.add_done_callback(
                lambda f: f.cancelled() or f.exception()
            )  # failures: at /generate

    async def submit(self, request: GenerateRequest) -> Generation:
        if self._agent.progress.state != AgentState.SUCCEEDED:
            raise HTTPException(409, f"nothing to validate: training is {self._agent.progress.state}")
        for name in request.checkpoints:
            self._agent.checkpoint_file(name)  # 404 for a checkpoint that does not exist
        async with self._changed:
            job = self._jobs.get(request.request_id)
            if job is not None and GenerationState(job.state) != GenerationState.FAILED:
                return job  # a retried request joins the work under way (or gets its result)
            self._jobs[request.request_id] = job = Generation(request.request_id)
            self._pending.append(request)
            if self._runner is None or self._runner.done():
                self._runner = asyncio.get_running_loop().create_task(self._run())
            return job

    async def wait(self, request_id: str, timeout: float) -> Generation:
        def finished() -> bool:
            return GenerationState(self._jobs[request_id].state).finished

        async with self._changed:
            if request_id not in self._jobs:
                raise HTTPException(404, f"no generation {request_id!r}")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(finished), timeout)
            return self._jobs[request_id]

    def file(self, request_id: str, file: str) -> Path:
        job = self._jobs.get(request_id)
        if job is None or GenerationState(job.state) != GenerationState.SUCCEEDED:
            raise HTTPException(404, f"no finished generation {request_id!r}")
        if file not in {i.file for i in job.generated()}:
            raise HTTPException(404, f"generation {request_id!r} has no {file!r}")
        return self.root / request_id / file

    async def _run(self) -> None:
        generator = self._the_generator()
        await asyncio.sleep(GATHER_S)  # let the rest of a batch arrive
        while True:
            async with self._changed:
                batch, self._pending = self._pending, []
                if not batch:
                    return
                for request in batch:
                    self._jobs[request.request_id].state = GenerationState.RUNNING
            files = {name: self._agent.checkpoint_file(name) for r in batch for name in r.checkpoints}
            started = time.monotonic()
            try:
                made = await asyncio.to_thread(generator.generate, batch, files, self.root)
            except Exception as exc:  # a failed batch is reported to every request in it
                print(f"pod agent: generation failed: {exc!r}", file=sys.stderr, flush=True)
                done = {r.request_id: Generation(r.request_id, GenerationState.FAILED, error=repr(exc)[:2000])
                        for r in batch}  # fmt: skip
            else:
                seconds = round(time.monotonic() - started, 3)
                done = {
                    rid: Generation(rid, GenerationState.SUCCEEDED, [dataclasses.asdict(i) for i in images],
                                    seconds=seconds)
                    for rid, images in made.items()
                }  # fmt: skip
                for rid, job in done.items():
                    saved = self.root / rid / "generation.json"
                    saved.write_text(json.dumps(dataclasses.asdict(job)))
            async with self._changed:
                self._jobs.update(done)
                self._changed.notify_all()


class DeadManSwitch:
    """Ends the pod when the workflow has gone quiet for ``idle_s`` or the deadline has passed."""

    def __init__(
        self,
        *,
        idle_s: float,
        deadline: float | None,
        end_pod: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_s = idle_s
        self.deadline = deadline
        self._end_pod = end_pod
        self._clock = clock
        self._last_contact = clock()
        self._in_flight = 0

    def contact(self, change: int) -> None:
        self._in_flight += change
        self._last_contact = self._clock()

    def reason_to_end(self) -> str | None:
        now = self._clock()
        if self.deadline is not None and now >= self.deadline:
            return "the pod reached its hard deadline"
        if self._in_flight <= 0 and now - self._last_contact >= self.idle_s:
            return f"no request from the workflow for {int(now - self._last_contact)} s"
        return None

    async def watch(self, agent: Agent) -> None:
        period = max(0.2, min(5.0, self.idle_s / 5))
        while (reason := self.reason_to_end()) is None:  # noqa: ASYNC110 - a clock, not an event
            await asyncio.sleep(period)
        print(f"pod agent: ending the pod: {reason}", file=sys.stderr, flush=True)
        await agent.abandon(reason)
        await asyncio.to_thread(self._end_pod, reason)


def end_own_pod(workdir: Path, env: dict[str, str] | None = None) -> Callable[[str], None]:
    """How this pod removes itself: RunPod's v2 ``DELETE /v2/pods/{id}`` with the pod-scoped key
    when running inside RunPod; then (and elsewhere) it records why in ``ended.json`` and exits,
    which the local provider reads as terminated."""
    env = dict(os.environ if env is None else env)

    def end(reason: str) -> None:
        pod_id, key = env.get("RUNPOD_POD_ID"), env.get("RUNPOD_API_KEY")
        if pod_id and key:
            base = env.get("LORAFLOW_RUNPOD_API_URL", "https://api.runpod.io").rstrip("/")
            for attempt in range(5):
                request = urllib.request.Request(  # noqa: S310 - our configured https API
                    f"{base}/v2/pods/{pod_id}", method="DELETE", headers={"Authorization": f"Bearer {key}"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                        break
                except urllib.error.HTTPError as exc:
                    if exc.code == 404:
                        break  # already gone
                except OSError:
                    pass
                time.sleep(2**attempt)
        ended = workdir / "ended.json"
        ended.write_text(json.dumps({"reason": reason, "at": time.time()}))
        os._exit(0)

    return end


def _die_with_agent() -> None:
    """The trainer's preexec_fn: the kernel SIGKILLs it the moment its agent dies (even by
    SIGKILL), so a trainer never trains, and bills, for nobody. (train_lora.py also watches its
    parent, for kernels without PR_SET_PDEATHSIG.)"""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def authorize(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> AsyncIterator[Agent]:
    token: str = request.app.state.token
    supplied = (authorization or "").removeprefix("Bearer ").strip()
    if not supplied or not hmac.compare_digest(supplied.encode(), token.encode()):
        raise HTTPException(401, "missing or wrong pod token")
    switch: DeadManSwitch = request.app.state.switch
    switch.contact(+1)  # a long poll in flight is contact for as long as it waits
    try:
        yield request.app.state.agent
    finally:
        switch.contact(-1)


AgentDep = Annotated[Agent, Depends(authorize)]


def create_app(
    *, token: str, workdir: Path, base_model: str | None, switch: DeadManSwitch | None = None
) -> FastAPI:
    switch = switch or DeadManSwitch(idle_s=float("inf"), deadline=None, end_pod=lambda _: None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.agent = Agent(workdir, base_model)
        app.state.generations = Generations(app.state.agent)
        watcher = asyncio.get_running_loop().create_task(switch.watch(app.state.agent))
        yield
        watcher.cancel()
        app.state.agent.stop()

    app = FastAPI(title="loraflow pod agent", lifespan=lifespan)
    app.state.token = token
    app.state.switch = switch

    @app.exception_handler(HTTPException)
    async def _error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    app.get(LIVEZ_PATH)(_livez)
    app.get(HEALTHZ_PATH)(_healthz)
    app.put("/images/{name}")(_put_image)
    app.post(TRAIN_PATH)(_train)
    app.get(PROGRESS_PATH, response_model=Progress)(_progress)
    app.get(ARTIFACT_PATH)(_artifact)
    app.get(LOG_PATH)(_log)
    app.post(GENERATE_PATH, response_model=Generation)(_generate)
    app.get("/generated/{request_id}/{file}")(_generated)
    return app


async def _livez() -> dict[str, bool]:
    return {"ok": True}


async def _healthz(agent: AgentDep) -> dict[str, Any]:
    return {"ok": True, "state": agent.progress.state, "base_model": bool(agent.base_model)}


async def _put_image(
    name: str, request: Request, agent: AgentDep, x_sha256: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    if not IMAGE_NAME.match(name):
        raise HTTPException(400, "image names are [A-Za-z0-9_-]{1,64} with .png/.jpg/.jpeg/.webp/.txt")
    body = await request.body()
    if len(body) > MAX_IMAGE_BYTES:
        raise HTTPException(413, f"images are at most {MAX_IMAGE_BYTES} bytes")
    digest = hashlib.sha256(body).hexdigest()
    if x_sha256 and x_sha256.lower() != digest:
        raise HTTPException(400, f"body does not match {SHA256_HEADER} (corrupted in transit?)")
    target = agent.images / name
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
        return {"name": name, "sha256": digest, "stored": False}  # already here: nothing to do
    if agent.progress.run_id is not None:
        raise HTTPException(409, "training has started; images can no longer change")
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(body)
    tmp.replace(target)
    return {"name": name, "sha256": digest, "stored": True}


async def _train(body: TrainRequest, agent: AgentDep, request: Request) -> JSONResponse:
    if problem := body.problem():
        raise HTTPException(422, problem)
    status, progress = await agent.start(body)
    request.app.state.generations.prepare()  # validation follows training: be ready for it
    return JSONResponse(dataclasses.asdict(progress), status_code=status)


async def _progress(
    agent: AgentDep,
    after: Annotated[int, Query(ge=-1)] = -1,
    wait_s: Annotated[float, Query(ge=0, le=60)] = 0,
    terminal_only: bool = False,
) -> Progress:
    if wait_s:
        return await agent.wait_for_change(after, wait_s, terminal_only=terminal_only)
    return agent.progress


async def _artifact(
    agent: AgentDep, layout: Literal["diffusers", "kohya"] = "diffusers", checkpoint: str | None = None
) -> FileResponse:
    if agent.progress.state != AgentState.SUCCEEDED:
        raise HTTPException(409, f"no artifact: training is {agent.progress.state}")
    if checkpoint is not None and checkpoint != FINAL_CHECKPOINT:
        if layout != "diffusers":
            raise HTTPException(400, "checkpoints are kept in the diffusers layout only")
        path = agent.checkpoint_file(checkpoint)
        (saved,) = [c for c in checkpoints_of(agent.progress) if c.name == checkpoint]
        headers = {SHA256_HEADER: saved.sha256}
    else:
        path = agent.output / (ARTIFACT_NAME if layout == "diffusers" else KOHYA_ARTIFACT_NAME)
        headers = {SHA256_HEADER: agent.progress.sha256 or ""} if layout == "diffusers" else {}
    return FileResponse(path, media_type="application/octet-stream", headers=headers, filename=path.name)


async def _log(agent: AgentDep) -> Response:
    """The trainer's stderr so far (its last LOG_TAIL_BYTES): a failed training's traceback, kept
    by the worker in storage before the pod goes."""
    path = agent.workdir / "train.log"
    if not path.exists():
        return Response(b"", media_type="text/plain")
    with path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return Response(log.read(), media_type="text/plain; charset=utf-8")


async def _generate(
    body: GenerateRequest, request: Request, _: AgentDep, wait_s: Annotated[float, Query(ge=0, le=60)] = 0
) -> Generation:
    if problem := body.problem():
        raise HTTPException(422, problem)
    generations: Generations = request.app.state.generations
    job = await generations.submit(body)
    if wait_s:
        job = await generations.wait(body.request_id, wait_s)
    return job


async def _generated(request_id: str, file: str, request: Request, _: AgentDep) -> FileResponse:
    if not REQUEST_ID.match(request_id):
        raise HTTPException(404, "no such generation")
    generations: Generations = request.app.state.generations
    return FileResponse(generations.file(request_id, file), media_type="image/png")


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="loraflow pod agent")
    parser.add_argument("--host", default=os.environ.get("LORAFLOW_AGENT_HOST", "0.0.0.0"))  # noqa: S104 - a pod's port
    parser.add_argument("--port", type=int, default=int(os.environ.get("LORAFLOW_AGENT_PORT", "8080")))
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("LORAFLOW_AGENT_WORKDIR", "/workspace"))
    )
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    if len(token) < 16:
        print(f"{TOKEN_ENV} must be set to a random token of 16+ characters", file=sys.stderr)
        return 2
    deadline = os.environ.get(DEADLINE_ENV)
    switch = DeadManSwitch(
        idle_s=float(os.environ.get(IDLE_ENV, "900")),
        deadline=float(deadline) if deadline else None,
        end_pod=end_own_pod(args.workdir),
    )
    app = create_app(
        token=token, workdir=args.workdir, base_model=os.environ.get("LORAFLOW_BASE_MODEL"), switch=switch
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
