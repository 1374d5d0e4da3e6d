"""The Replicate path of TrainLoraWorkflow (when RunPod has no GPU): start, poll, download,
cancel. Each is idempotent, like the pod activities they stand in for.

Replicate's SDXL trainer trains textual-inversion tokens (``<s0><s1>``, standing for the trigger
word) together with the LoRA; its ``output.weights`` tar holds ``lora.safetensors``,
``embeddings.pti`` (the tokens' embeddings, one tensor per text encoder) and
``special_params.json`` (trigger word → ``"<s0><s1>"``). The LoRA alone would lack the tokens it
was trained with, so download stores one ``.safetensors`` holding both: the LoRA's tensors as
they are, the embeddings under ``loraflow.embeddings.clip_l``/``clip_g``, and the token map in
``__metadata__`` (the format: ``loraflow.ml.trained_tokens``).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import beating, heartbeating
from loraflow.compute.replicate import ReplicateTrainer, billed_seconds, end_reason
from loraflow.compute.replicate_api import Training, TrainingStatus
from loraflow.contracts.lora_training import (
    MachineProgress,
    MachineReleased,
    ReplicateCancelInput,
    ReplicateDownloadInput,
    ReplicatePollInput,
    ReplicateStartInput,
    ReplicateTrainingHandle,
    StagedArtifact,
)
from loraflow.contracts.names import replicate_artifact_key, replicate_dataset_key, training_job_id
from loraflow.errors import ProviderError, ProviderNotFound
from loraflow.logging import get_logger
from loraflow.ml.trained_tokens import EMBEDDING_PREFIX, TOKEN_MAP_KEY, split_tokens
from loraflow.storage import Storage

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = get_logger(__name__)

#: The dataset zip's URL path ends in its key (``names.replicate_dataset_key``): how a training is
#: known as ours and whose. Replicate's trainings carry no destination, but they do carry their
#: ``input``.
_BEFORE_ID, _AFTER_ID = replicate_dataset_key("\0").split("\0")
_DATASET_PATH = re.compile("/" + re.escape(_BEFORE_ID) + "([^/]+)" + re.escape(_AFTER_ID) + "$")
_T = TypeVar("_T")

#: What we take from the weights tar, and how large each may be (bytes).
_LORA, _EMBEDDINGS, _SPECIAL = "lora.safetensors", "embeddings.pti", "special_params.json"
_LIMITS = {_LORA: 4 << 30, _EMBEDDINGS: 64 << 20, _SPECIAL: 1 << 20}
#: embeddings.pti's tensors, by text encoder (Replicate's SDXL trainer: ``text_encoders_{i}`` is
#: the pipeline's i-th text encoder: CLIP ViT-L, then OpenCLIP ViT-bigG), and our names for them.
_PTI_KEYS = {"text_encoders_0": "clip_l", "text_encoders_1": "clip_g"}
_MAX_HEADER = 100 << 20  # safetensors' own limit
_DTYPE_SIZES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}


def lora_id_of(training: Training) -> str | None:
    """The LoRA a training is of, read from its dataset URL; None if it is not one of ours."""
    images = training.input.get("input_images")
    if not isinstance(images, str):
        return None
    match = _DATASET_PATH.search(unquote(urlsplit(images).path))
    return match[1] if match else None


class ReplicateActivities:
    def __init__(self, *, pool: ConnectionPool, storage: Storage, trainer: ReplicateTrainer) -> None:
        self._pool = pool
        self._storage = storage
        self._trainer = trainer

    @activity.defn(name="replicate_start")
    def replicate_start(self, request: ReplicateStartInput) -> ReplicateTrainingHandle:
        """Zip the dataset (deterministically: a retry writes the same bytes), start the
        training (or find the one a lost attempt started), and record its id at once."""
        # Reading the dataset, storing its zip and Replicate's answer can take minutes: beats, so
        # a worker lost meanwhile is noticed at the heartbeat timeout, not the start-to-close.
        with heartbeating("starting"):
            archive = io.BytesIO()
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
                for index, key in enumerate(request.dataset):
                    info = zipfile.ZipInfo(f"{index}.png", date_time=(2020, 1, 1, 0, 0, 0))
                    z.writestr(info, b"".join(self._storage.get(key)))
            zip_key = replicate_dataset_key(request.lora_id)
            self._storage.put(zip_key, [archive.getvalue()])
            # A new signature each attempt: the trainer finds an earlier training by the path.
            training_id = _provider_call(self._trainer.start, self._storage.url(zip_key), request.params)
        training = ReplicateTrainingHandle(training_id, self._trainer.price_per_hour, time.time())
        with self._pool.connection() as conn:
            conn.execute(
                """INSERT INTO lora_training_jobs (id, lora_model_id, user_id, runpod_pod_id)
                   SELECT %s, id, user_id, %s FROM lora_models WHERE id = %s
                   ON CONFLICT (id) DO UPDATE SET runpod_pod_id = EXCLUDED.runpod_pod_id""",
                [training_job_id(request.workflow_id), training.recorded_id, request.lora_id],
            )
        log.info(
            "replicate_training_started",
            lora_id=request.lora_id,
            workflow_id=request.workflow_id,
            training_id=training_id,
        )
        return training

    @activity.defn(name="replicate_poll")
    def replicate_poll(self, request: ReplicatePollInput) -> MachineProgress:
        """The training's state, returned when it ends or after ``wait_s``. Every way it can
        end without weights (failed, canceled, aborted) is ``failed``, with the reason."""
        deadline = time.monotonic() + request.wait_s
        while True:
            current = _provider_call(self._trainer.get, request.training.training_id)
            activity.heartbeat(str(current.status))
            if current.terminal or time.monotonic() >= deadline:
                if current.status == TrainingStatus.succeeded:
                    state = "succeeded"
                else:
                    state = "failed" if current.terminal else "training"
                return MachineProgress(state=state, phase=str(current.status), error=end_reason(current))
            time.sleep(1.0)

    @activity.defn(name="replicate_download")
    def replicate_download(self, request: ReplicateDownloadInput) -> StagedArtifact:
        """Fetch ``output.weights`` (with the token: Replicate's file URLs need it) and stage
        the LoRA, with the trained token embeddings when the weights carry them."""
        training_id = request.training.training_id
        current = _provider_call(self._trainer.get, training_id)
        weights = current.output.weights if current.output else None
        if current.status != TrainingStatus.succeeded or not weights:
            raise ApplicationError(f"Replicate training {training_id} has no weights", non_retryable=True)
        trigger = str(current.input.get("token_string") or "")
        key = replicate_artifact_key(request.lora_id, training_id)
        with tempfile.TemporaryDirectory(prefix="loraflow-replicate-") as tmp:
            work = Path(tmp)
            download = work / "weights"
            try:
                with self._trainer.open_file(weights) as r, download.open("wb") as f:
                    for chunk in r.iter_bytes(1 << 20):
                        f.write(chunk)
                        activity.heartbeat()
            except ProviderError as exc:
                raise ApplicationError(str(exc), non_retryable=not exc.retryable) from exc
            try:
                artifact = lora_from_weights(download, work, trigger)
            except ValueError as exc:
                raise ApplicationError(f"the trained weights: {exc}", non_retryable=True) from exc
            stored = self._storage.put(key, beating(_chunks(artifact)))
        log.info("replicate_weights_staged", training_id=training_id, key=key, size=stored.size)
        return StagedArtifact(key, stored.size, stored.sha256)

    @activity.defn(name="replicate_cancel")
    def replicate_cancel(self, request: ReplicateCancelInput) -> MachineReleased:
        """Cleanup: cancel unless it has ended; raises (so is retried) until Replicate says it
        has. An already-ended training (``aborted`` too) is a success. Returns the seconds
        billed."""
        training = request.training
        try:
            with heartbeating("cancelling"):
                current = self._trainer.cancel(training.training_id)
        except ProviderNotFound:
            log.warning("replicate_training_unknown", training_id=training.training_id)
            return MachineReleased(billed_s=0.0)  # nothing there to bill
        except ProviderError as exc:
            raise ApplicationError(str(exc)) from exc  # retried: only an ended training stops it
        if not current.terminal:
            raise ApplicationError(f"Replicate training {training.training_id} is still {current.status}")
        log.info("replicate_training_ended", training_id=training.training_id, status=str(current.status))
        return MachineReleased(billed_s=billed_seconds(current, since=training.created_at))


def _provider_call(call: Callable[..., _T], *args: Any) -> _T:
    try:
        return call(*args)
    except ProviderError as exc:
        raise ApplicationError(str(exc), non_retryable=not exc.retryable) from exc


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


# -- the weights ---------------------------------------------------------------------------


def lora_from_weights(weights: Path, work: Path, trigger: str) -> Path:
    """The file to store, from what ``output.weights`` was: a tar (the SDXL trainer's) or a
    bare ``.safetensors``. Raises ValueError when it is neither or is malformed."""
    if not tarfile.is_tarfile(weights):
        return weights  # checked as safetensors by store_lora
    try:
        members = _extract(weights, work)
    except tarfile.TarError as exc:
        raise ValueError(f"the tar is unreadable: {exc}") from exc
    if _LORA not in members:
        raise ValueError(f"the tar holds no {_LORA}")
    if _EMBEDDINGS not in members:
        log.warning("replicate_weights_without_embeddings")  # a trainer without tokens
        return members[_LORA]
    embeddings = _read_pti(members[_EMBEDDINGS])
    rows = {shape[0] for _, shape, _ in embeddings.values()}
    if len(rows) != 1:
        raise ValueError(f"{_EMBEDDINGS}: the text encoders have different token counts")
    token_map = _token_map(members.get(_SPECIAL), trigger, rows.pop())
    out = work / "lora-with-embeddings.safetensors"
    bundle(members[_LORA], embeddings, token_map, out)
    return out


def _extract(tar_path: Path, work: Path) -> dict[str, Path]:
    """The members we use, by name, into files we name: nothing in the tar chooses a path."""
    found: dict[str, Path] = {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            name = PurePosixPath(member.name).name
            if name not in _LIMITS or not member.isfile() or name in found:
                continue
            if member.size > _LIMITS[name]:
                raise ValueError(f"{name} is {member.size} bytes, more than {_LIMITS[name]}")
            source = tar.extractfile(member)
            if source is None:
                continue
            target = work / f"member-{name}"
            with source, target.open("wb") as f:
                shutil.copyfileobj(source, f, 1 << 20)
            found[name] = target
    return found


def _token_map(special: Path | None, trigger: str, rows: int) -> tuple[str, tuple[str, ...]]:
    """(trigger word, its tokens) from special_params.json; without it, the trainer's
    convention ``<s0>...<sN-1>`` for the training's trigger word."""
    if special is None:
        if not trigger:
            raise ValueError(f"{_SPECIAL} is missing and the training has no token_string")
        return trigger, tuple(f"<s{i}>" for i in range(rows))
    try:
        mapping = json.loads(special.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{_SPECIAL} is not JSON") from exc
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError(f"{_SPECIAL} maps nothing")
    if trigger in mapping:
        value = mapping[trigger]
    elif len(mapping) == 1:  # the one token string the training had, whatever it was called
        ((name, value),) = mapping.items()
        trigger = trigger or name
    else:
        raise ValueError(f"{_SPECIAL} does not map the trigger word {trigger!r}")
    tokens = split_tokens(value) if isinstance(value, str) else ()
    if len(tokens) != rows:
        raise ValueError(f"{_SPECIAL} maps {trigger!r} to {value!r}, not to {rows} tokens")
    return trigger, tokens


# -- safetensors, without loading a tensor ---------------------------------------------------
# The LoRA can be hundreds of MB and in any dtype: the bundle copies its bytes as they are and
# appends the embeddings' bytes, rewriting only the header (offsets are relative to the data).


def _header(f: BinaryIO, size: int) -> tuple[dict[str, Any], int]:
    """The parsed header and the data section's length, checked to cover the data exactly."""
    raw = f.read(8)
    if len(raw) < 8:
        raise ValueError("too short to be safetensors")
    (length,) = struct.unpack("<Q", raw)
    if length > min(size - 8, _MAX_HEADER):
        raise ValueError("the safetensors header is larger than the file")
    try:
        header = json.loads(f.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("the safetensors header is not JSON") from exc
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not an object")
    data = size - 8 - length
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = (int(x) for x in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"tensor {name} has no data offsets") from exc
        if not 0 <= begin <= stop <= data:
            raise ValueError(f"tensor {name} lies outside the file")
        end = max(end, stop)
    return header, end


def _read_pti(path: Path) -> dict[str, tuple[str, list[int], bytes]]:
    """embeddings.pti (a safetensors file): our key → (dtype, shape, bytes)."""
    with path.open("rb") as f:
        header, _ = _header(f, path.stat().st_size)
        start = f.tell()
        out = {}
        for pti_key, ours in _PTI_KEYS.items():
            entry = header.get(pti_key)
            shape = entry.get("shape") if isinstance(entry, dict) else None
            if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(n, int) for n in shape)):
                raise ValueError(f"{_EMBEDDINGS} has no 2-D {pti_key}")
            assert isinstance(entry, dict)  # shape came from it
            dtype = str(entry["dtype"])
            begin, stop = entry["data_offsets"]
            if dtype not in _DTYPE_SIZES or stop - begin != shape[0] * shape[1] * _DTYPE_SIZES[dtype]:
                raise ValueError(f"{_EMBEDDINGS}: {pti_key} is not {shape} of a float type")
            f.seek(start + begin)
            out[ours] = (dtype, shape, f.read(stop - begin))
    return out


def bundle(
    lora: Path,
    embeddings: dict[str, tuple[str, list[int], bytes]],
    token_map: tuple[str, tuple[str, ...]],
    out: Path,
) -> None:
    """Write ``lora`` plus ``embeddings`` (under ``loraflow.embeddings.<name>``) and the token
    map (in ``__metadata__``) to ``out``. Deterministic: a retry writes the same bytes."""
    with lora.open("rb") as src:
        header, data_length = _header(src, lora.stat().st_size)
        metadata = dict(header.pop("__metadata__", None) or {})
        trigger, tokens = token_map
        metadata[TOKEN_MAP_KEY] = json.dumps({trigger: "".join(tokens)})
        metadata["loraflow.trigger_word"] = trigger
        offset = data_length
        for name in sorted(embeddings):
            dtype, shape, data = embeddings[name]
            header[EMBEDDING_PREFIX + name] = {
                "dtype": dtype,
                "shape": shape,
                "data_offsets": [offset, offset + len(data)],
            }
            offset += len(data)
        text = json.dumps({"__metadata__": metadata, **dict(sorted(header.items()))}, separators=(",", ":"))
        encoded = text.encode()
        encoded += b" " * (-len(encoded) % 8)  # safetensors pads the header to 8 bytes
        with out.open("wb") as dst:
            dst.write(struct.pack("<Q", len(encoded)))
            dst.write(encoded)
            remaining = data_length
            while remaining:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    raise ValueError("the LoRA file ends early")
                dst.write(chunk)
                remaining -= len(chunk)
            for name in sorted(embeddings):
                dst.write(embeddings[name][2])
