"""ReplicateTrainer, ReplicatePredictor and the Replicate activities against the strict fake
(tests/fakes/replicate.py), which follows Replicate's OpenAPI document: create stays one training
across re-signed URLs and lost answers, ``aborted`` is terminal (and cleanup of it ends), trainings
without a destination are still found by the sweeper (and others' are left alone), file URLs need
the token, and the trained token embeddings survive into the stored LoRA and load into the
pipeline. Predictions of the trained version really generate with its LoRA and tokens, are
refused as the document says, end by cancel or deadline, and every copy a lost answer makes has a
deadline."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.library import _safetensors_metadata
from activities.replicate import ReplicateActivities
from activities.sweeper import SweeperActivities
from loraflow.compute.replicate import (
    ReplicateConfig,
    ReplicatePredictor,
    ReplicateTrainer,
    end_reason,
    prediction_end_reason,
    training_input,
)
from loraflow.compute.replicate_api import Prediction, PredictionStatus, Training, TrainingStatus
from loraflow.contracts.lora_training import (
    ReplicateCancelInput,
    ReplicateDownloadInput,
    ReplicatePollInput,
    ReplicateTrainingHandle,
)
from loraflow.contracts.maintenance import SweepOrphanPodsInput
from loraflow.contracts.names import replicate_dataset_key
from loraflow.errors import ProviderError, ProviderNotFound
from loraflow.storage.local import LocalStorage
from tests.fakes.replicate import BASE_VERSION, FakeReplicate
from tests.fakes.server import serve
from training_scripts.tiny_model import TINY_TRAINING_PARAMS

TOKEN = "r8_test"
DESTINATION = "loraflow/characters"


def signed(lora_id: str, iat: int) -> str:
    """A Supabase-style signed URL of a LoRA's dataset: new token at every signing."""
    return f"https://project.supabase.co/storage/v1/object/sign/{replicate_dataset_key(lora_id)}?token=eyJ.{iat}.sig"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeReplicate]:
    """A fake with no machine free: trainings stay ``starting`` (nothing trains)."""
    replicate = FakeReplicate(TOKEN, tmp_path / "replicate", "unused", {}, paused=True)
    with serve(replicate.app()) as url:
        replicate.url = url
        yield replicate
    replicate.close()


def config_for(fake: FakeReplicate, **config: Any) -> ReplicateConfig:
    settings: dict[str, Any] = {"api_token": TOKEN, "destination": DESTINATION, "base_url": fake.url}
    return ReplicateConfig(**settings | {"timeout_s": 1.0} | config)


def trainer_for(fake: FakeReplicate, **config: Any) -> ReplicateTrainer:
    return ReplicateTrainer(config_for(fake, **config), sleep=lambda _: None)


def _activities(storage: LocalStorage, trainer: ReplicateTrainer) -> ReplicateActivities:
    unused = ConnectionPool("", open=False)  # polling, downloading and cancelling need no database
    return ReplicateActivities(pool=unused, storage=storage, trainer=trainer)


def predictor_for(fake: FakeReplicate, **config: Any) -> ReplicatePredictor:
    """A predictor that polls in real time (its waits are what is tested)."""
    return ReplicatePredictor(config_for(fake, **config))


def wait_for(get: Callable[[], Training], *statuses: TrainingStatus, timeout: float = 30) -> Training:
    deadline = time.monotonic() + timeout
    while (current := get()).status not in statuses:
        assert time.monotonic() < deadline, f"still {current.status}"
        time.sleep(0.05)
    return current


@dataclass
class Trained:
    """A fake Replicate that has trained one LoRA for real, and what that left."""

    fake: FakeReplicate
    trainer: ReplicateTrainer
    storage: LocalStorage
    training: Training

    @property
    def version(self) -> str:
        assert self.training.output and self.training.output.version
        return self.training.output.version


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[Trained]:
    """One real training of the tiny model (2 steps) for the whole module: its weights are what
    the download tests store, its version what the prediction tests run."""
    from loraflow.devstack.demo import draw_character

    root = tmp_path_factory.mktemp("replicate-trained")
    storage = LocalStorage(root / "storage")
    with zipfile.ZipFile(archive := root / "dataset.zip", "w") as z:
        for i in range(3):
            z.writestr(f"{i}.png", draw_character(i))
    storage.put(replicate_dataset_key("lora-e"), [archive.read_bytes()])
    replicate = FakeReplicate(TOKEN, root / "replicate", str(tiny_model), dict(TINY_TRAINING_PARAMS))
    with serve(replicate.app()) as url:
        replicate.url = url
        trainer = trainer_for(replicate, timeout_s=30.0)
        training_id = trainer.start(storage.url(replicate_dataset_key("lora-e")), {"steps": 2})
        ended = (
            TrainingStatus.succeeded,
            TrainingStatus.failed,
            TrainingStatus.canceled,
            TrainingStatus.aborted,
        )
        done = wait_for(lambda: trainer.get(training_id), *ended, timeout=300)
        assert done.status == TrainingStatus.succeeded, (done.error, (done.logs or "")[-2000:])
        yield Trained(replicate, trainer, storage, done)
    replicate.close()


@pytest.mark.parametrize("lost", ["late", "drop"])
def test_a_lost_create_retried_with_a_resigned_url_is_one_training(fake: FakeReplicate, lost: str) -> None:
    trainer = trainer_for(fake)
    params = {"steps": 2, "trigger_word": "zxq"}
    fake.lose_next_create = lost  # type: ignore[assignment]
    first = trainer.start(signed("lora-1", iat=1), params)  # created, but the answer is lost
    again = trainer.start(signed("lora-1", iat=2), params)  # the activity's retry: signed anew
    assert first == again
    assert fake.creates == 1 and list(fake.trainings) == [first]
    created = fake.trainings[first]
    assert created.destination == DESTINATION and created.model == "stability-ai/sdxl"
    assert created.input == training_input(signed("lora-1", iat=1), params)

    other = trainer.start(signed("lora-2", iat=1), params)  # another LoRA is another training
    assert other != first and fake.creates == 2

    # A training that ended without weights is not reused: the next attempt starts afresh.
    assert trainer.cancel(first).status == TrainingStatus.canceled
    assert trainer.start(signed("lora-1", iat=3), params) not in (first, other)


def test_requests_and_answers_follow_the_document(fake: FakeReplicate) -> None:
    api = httpx.Client(base_url=f"{fake.url}/v1", headers={"Authorization": f"Bearer {TOKEN}"})
    path = "/models/stability-ai/sdxl/versions/abc123/trainings"
    good = {"destination": DESTINATION, "input": {"input_images": signed("x", 1)}}
    for body in (
        {**good, "destinaton": DESTINATION},  # an unknown top-level field
        {"input": good["input"]},  # no destination
        {"destination": DESTINATION},  # no input
    ):
        r = api.post(path, json=body)
        assert r.status_code == 422 and set(r.json()) == {"title", "detail", "status"}, r.text
        assert r.json()["status"] == 422
    assert fake.creates == 0
    r = api.post(path, json=good)
    assert r.status_code == 201
    created = Training.model_validate(r.json())
    assert "destination" not in r.json() and created.status == TrainingStatus.starting
    assert httpx.get(f"{fake.url}/v1/trainings/{created.id}").status_code == 401  # no token
    missing = api.get("/trainings/nope")
    assert missing.status_code == 404 and missing.json()["status"] == 404 and missing.json()["title"]

    # The client says a refusal is final (a 4xx is our request or token, not the weather).
    with pytest.raises(ProviderError) as refused:
        trainer_for(fake, api_token="r8_wrong").start(signed("y", 1), {})
    assert refused.value.retryable is False and "401" in str(refused.value)


def test_aborted_ends_polling_with_a_reason_and_cleanup_of_it_is_done(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    trainer = trainer_for(fake)
    fake.abort_before_start = True
    fake.paused = False
    training_id = trainer.start(signed("lora-a", 1), {})
    aborted = wait_for(lambda: trainer.get(training_id), TrainingStatus.aborted)
    assert aborted.terminal and "aborted" in (end_reason(aborted) or "")
    assert trainer.list_active() == []

    activities = _activities(LocalStorage(tmp_path / "storage"), trainer)
    ref = ReplicateTrainingHandle(training_id, 3.51, time.time())
    progress = ActivityEnvironment().run(activities.replicate_poll, ReplicatePollInput(ref, 5.0))
    assert progress.state == "failed" and progress.phase == "aborted"
    assert "before it started" in (progress.error or "")
    # Cleanup (retried forever by the workflow) succeeds at once, and bills nothing.
    assert ActivityEnvironment().run(activities.replicate_cancel, ReplicateCancelInput(ref)).billed_s == 0.0
    assert ActivityEnvironment().run(activities.replicate_cancel, ReplicateCancelInput(ref)).billed_s == 0.0
    assert fake.trainings[training_id].status == TrainingStatus.aborted


def test_a_failed_training_ends_polling_with_the_trainers_error(fake: FakeReplicate, tmp_path: Path) -> None:
    trainer = trainer_for(fake)
    fake.paused = False
    missing = (tmp_path / "storage" / replicate_dataset_key("lora-f")).as_uri()  # the trainer cannot fetch it
    training_id = trainer.start(missing, {})
    failed = wait_for(lambda: trainer.get(training_id), TrainingStatus.failed)
    assert failed.error and (end_reason(failed) or "").startswith("the trainer failed: ")
    activities = _activities(LocalStorage(tmp_path / "storage"), trainer)
    ref = ReplicateTrainingHandle(training_id, 3.51, time.time())
    progress = ActivityEnvironment().run(activities.replicate_poll, ReplicatePollInput(ref, 5.0))
    assert (progress.state, progress.phase) == ("failed", "failed") and failed.error in (progress.error or "")


def test_lists_are_followed_page_after_page(fake: FakeReplicate) -> None:
    fake.page_size = 2
    trainer = trainer_for(fake)
    ids = [trainer.start(signed(f"lora-p{i}", 1), {}) for i in range(5)]
    assert [t.id for t in trainer.trainings()] == ids[::-1]  # most recent first, over 3 pages
    assert {t.id for t in trainer.list_active()} == set(ids)
    assert trainer.start(signed("lora-p0", 2), {}) == ids[0]  # found on the last page
    assert fake.creates == 5


async def test_the_sweeper_cancels_our_orphans_and_leaves_others_alone(
    fake: FakeReplicate, temporal_env: WorkflowEnvironment, pg_dsn: str
) -> None:
    fake.page_size = 2
    trainer = trainer_for(fake)
    api = httpx.Client(base_url=f"{fake.url}/v1", headers={"Authorization": f"Bearer {TOKEN}"})
    # Someone else's training on the same trainer, in the same account.
    foreign = api.post(
        f"/models/{trainer.version.owner}/{trainer.version.name}/versions/{trainer.version.id}/trainings",
        json={"destination": "someone/else", "input": {"input_images": "https://example.com/mine.zip"}},
    ).json()["id"]
    # Ours, whose workflow is unknown and whose start never recorded it.
    orphan = trainer.start(signed("00000000-0000-4000-8000-000000000001", 1), {})
    for i in range(3):  # pages of others in between
        api.post(
            f"/models/other/model/versions/v{i}/trainings",
            json={"destination": "someone/else", "input": {"input_images": signed(f"l{i}", 1)}},
        )
    with ConnectionPool(pg_dsn, min_size=1, kwargs={"autocommit": True}, open=True) as pool:
        sweeper = SweeperActivities(providers=[], client=temporal_env.client, replicate=trainer, pool=pool)
        swept = await ActivityEnvironment().run(sweeper.sweep_orphan_pods, SweepOrphanPodsInput(3 * 3600.0))
    assert swept.terminated == [f"replicate:{orphan}"]
    assert fake.trainings[orphan].status == TrainingStatus.canceled
    assert fake.trainings[foreign].status == TrainingStatus.starting
    assert sum(t.status == TrainingStatus.starting for t in fake.trainings.values()) == 4


def test_file_urls_get_the_token_only_on_replicates_hosts() -> None:
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        return httpx.Response(200, content=b"weights")

    trainer = ReplicateTrainer(
        ReplicateConfig(api_token=TOKEN, destination=DESTINATION), transport=httpx.MockTransport(answer)
    )
    with trainer.open_file("https://pbxt.replicate.delivery/abc/trained_model.tar") as r:
        assert r.read() == b"weights"
    assert seen == [("pbxt.replicate.delivery", f"Bearer {TOKEN}")]
    for elsewhere in ("https://evil.example.com/trained_model.tar", "http://replicate.delivery/x.tar"):
        with pytest.raises(ProviderError), trainer.open_file(elsewhere):
            pass
    assert len(seen) == 1


def test_the_weights_keep_the_trained_tokens(tmp_path: Path, tiny_model: Path, trained: Trained) -> None:
    """The fake trainer really trains (2 steps); the staged LoRA carries ``<s0><s1>``, which
    load into both text encoders of the tiny SDXL pipeline with the trained rows."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    from loraflow.ml.trained_tokens import TrainedTokens, load_trained_tokens, use_trained_tokens, with_tokens

    storage, trainer, replicate, done = trained.storage, trained.trainer, trained.fake, trained.training
    training_id = done.id
    assert done.output and done.output.weights
    assert httpx.get(done.output.weights).status_code == 401  # Replicate's file URLs need the token

    activities = _activities(storage, trainer)
    ref = ReplicateTrainingHandle(training_id, 3.51, time.time())
    download = ReplicateDownloadInput("lora-e", ref)
    staged = ActivityEnvironment().run(activities.replicate_download, download)
    assert ActivityEnvironment().run(activities.replicate_download, download) == staged  # retry
    billed = ActivityEnvironment().run(activities.replicate_cancel, ReplicateCancelInput(ref)).billed_s
    assert billed > 0  # succeeded: billed

    path = tmp_path / "lora.safetensors"
    path.write_bytes(b"".join(storage.get(staged.key)))
    data = path.read_bytes()
    metadata = _safetensors_metadata(data[: 1 << 16], len(data))  # what store_lora accepts
    assert metadata["loraflow.token_map"] == '{"ohwx": "<s0><s1>"}'

    pipe = StableDiffusionXLPipeline.from_pretrained(str(tiny_model))
    pipe.load_lora_weights(str(path), adapter_name="replicate")  # the embeddings do not disturb it
    token_map = load_trained_tokens(pipe, str(path))
    assert token_map == {"ohwx": "<s0><s1>"}
    exported = replicate.trainings[training_id].embeddings
    prompt = with_tokens("a photo of ohwx character", token_map)
    assert prompt == "a photo of <s0><s1> character"
    encoders = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
    for i, (tokenizer, encoder) in enumerate(encoders):
        ids = tokenizer.convert_tokens_to_ids(["<s0>", "<s1>"])
        assert {"<s0>", "<s1>"} <= set(tokenizer.get_added_vocab())
        rows = encoder.get_input_embeddings().weight[ids]
        assert torch.equal(rows, torch.from_numpy(exported[f"text_encoders_{i}"]))
        tokenized = tokenizer(prompt).input_ids
        assert tokenized[tokenized.index(ids[0]) + 1] == ids[1]  # the prompt has both, in order
    image = pipe(prompt, num_inference_steps=2, height=64, width=64, output_type="np").images[0]
    assert image.shape == (64, 64, 3)

    # Another LoRA's tokens (same names, as every Replicate LoRA's) replace the rows in place.
    other = {name: torch.full((2, 32), float(n)) for n, name in enumerate(("clip_l", "clip_g"), 1)}
    use_trained_tokens(pipe, TrainedTokens({"zz": "<s0><s1>"}, ("<s0>", "<s1>"), other))
    for (tokenizer, encoder), name in zip(encoders, ("clip_l", "clip_g"), strict=True):
        ids = tokenizer.convert_tokens_to_ids(["<s0>", "<s1>"])
        assert torch.equal(encoder.get_input_embeddings().weight[ids], other[name])


# -- predictions ---------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def test_a_trained_version_generates_with_its_lora_and_tokens(trained: Trained) -> None:
    """Real images of the trained version: the tiny model's size; its LoRA changes the image
    (scale 1 against 0), scale 0 is the base model, and the same inputs give the same bytes."""
    predictor = predictor_for(trained.fake, timeout_s=30.0)
    polls: list[Prediction] = []

    def image(version: str, prompt: str, scale: float) -> bytes:
        return predictor.generate_image(
            version,
            prompt=prompt,
            seed=7,
            lora_scale=scale,
            timeout_s=120,
            on_poll=polls.append,
            num_inference_steps=2,
        )

    with_lora = image(trained.version, "a photo of ohwx character", 1.0)
    without = image(trained.version, "a photo of ohwx character", 0.0)
    again = image(trained.version, "a photo of ohwx character", 1.0)
    assert _png_size(with_lora) == _png_size(without) == (64, 64)  # the tiny model's native size
    assert with_lora != without and with_lora == again
    assert polls and polls[-1].status == PredictionStatus.succeeded and polls[-1].metrics
    # The trigger word ran as the trained tokens, as Replicate's SDXL runs a trained version.
    ran = [
        p for p in trained.fake.predictor.items.values() if p.input["prompt"] == "a photo of ohwx character"
    ]
    assert len(ran) == 3 and all("prompt: a photo of <s0><s1> character" in p.logs for p in ran)

    # Scale 0 is the base model: the same image as the base version's (a prompt without the
    # trigger word, whose tokens would still be put in), asked for by its bare version id.
    version_id = trained.version.split(":")[1]
    assert len(version_id) == 64  # "the full 64-character version ID"
    plain = image(version_id, "a photo of a character", 0.0)
    assert plain == image(BASE_VERSION, "a photo of a character", 1.0)
    assert plain != image(version_id, "a photo of a character", 1.0)


def test_a_failed_prediction_raises_with_replicates_error(trained: Trained) -> None:
    predictor = predictor_for(trained.fake, timeout_s=30.0)
    with pytest.raises(ProviderError) as failed:
        # SDXL's pipeline refuses a width that is not a multiple of 8: the model fails.
        predictor.generate_image(
            trained.version,
            prompt="ohwx",
            seed=1,
            lora_scale=1.0,
            timeout_s=60,
            width=60,
            num_inference_steps=2,
        )
    assert "the model failed" in str(failed.value) and "divisible by 8" in str(failed.value)
    assert failed.value.retryable is False  # the same inputs fail the same way


def test_prefer_wait_answers_with_the_finished_prediction(trained: Trained) -> None:
    """``Prefer: wait=n`` keeps the create open until the output is there (201), or n seconds
    (202, the prediction still running); output files need the token."""
    fake = trained.fake
    api = httpx.Client(base_url=f"{fake.url}/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    body = {"version": trained.version, "input": {"prompt": "ohwx", "seed": 3, "num_inference_steps": 2}}
    r = api.post("/predictions", json=body, headers={"Prefer": "wait=60"})
    assert r.status_code == 201, r.text
    done = Prediction.model_validate(r.json())
    assert (
        done.status == PredictionStatus.succeeded and isinstance(done.output, list) and len(done.output) == 1
    )
    assert done.input == body["input"] and done.model == DESTINATION and done.version == trained.version[-64:]
    assert httpx.get(done.output[0]).status_code == 401  # the file needs the token
    assert _png_size(predictor_for(fake).output_bytes(done)[0]) == (64, 64)

    fake.predictor.hold()
    try:
        r = api.post("/predictions", json=body, headers={"Prefer": "wait=1"})
        assert r.status_code == 202 and r.json()["status"] == "processing" and r.json()["output"] is None
    finally:
        fake.predictor.release()
    assert fake.predictor.wait_for(r.json()["id"], [PredictionStatus.succeeded], timeout=60)


@pytest.fixture
def held(fake: FakeReplicate) -> FakeReplicate:
    """The paused fake, whose predictions stop before their first step: nothing loads (its
    model is "unused"), and closing the fake ends them."""
    fake.predictor.hold()
    return fake


def test_predictions_follow_the_document(held: FakeReplicate) -> None:
    fake = held
    api = httpx.Client(base_url=f"{fake.url}/v1", headers={"Authorization": f"Bearer {TOKEN}"})
    good: dict[str, Any] = {"version": BASE_VERSION, "input": {"prompt": "a photo", "seed": 1}}
    unknown_version = "stability-ai/sdxl:" + "0" * 64
    for body, title in (
        ({**good, "versoin": BASE_VERSION}, "Invalid request body"),  # additionalProperties: false
        ({"input": good["input"]}, "Invalid request body"),  # version is required
        ({"version": BASE_VERSION}, "Invalid request body"),  # input is required
        ({**good, "version": unknown_version}, "Invalid version or not permitted"),
        ({**good, "version": "stability-ai/sdxl"}, "Invalid version or not permitted"),  # not official
        ({**good, "input": {"prompt": "x", "lora_sclae": 1}}, "Input validation failed"),
    ):
        r = api.post("/predictions", json=body)
        assert r.status_code == 422 and set(r.json()) == {"title", "detail", "status"}, r.text
        assert r.json()["status"] == 422 and r.json()["title"] == title, r.text
    for header in (
        {"Prefer": "wait=0"},  # the pattern: 1 to 99 (its description says 60 at most)
        {"Prefer": "wait=100"},
        {"Prefer": "nowait"},
        {"Cancel-After": "4s"},
        {"Cancel-After": "5 min"},
    ):
        r = api.post("/predictions", json=good, headers=header)
        assert r.status_code == 400 and r.json()["status"] == 400, (header, r.text)
    assert httpx.post(f"{fake.url}/v1/predictions", json=good).status_code == 401  # no token
    assert fake.predictor.items == {}

    r = api.post("/predictions", json=good, headers={"Cancel-After": "1h30m"})
    assert r.status_code == 201
    created = Prediction.model_validate(r.json())  # every field the schema requires is there
    assert {"output", "error", "data_removed", "urls"} <= set(r.json()) and r.json()["output"] is None
    assert (created.model, created.version) == ("stability-ai/sdxl", BASE_VERSION[-64:])
    assert created.deadline and created.deadline - created.created_at == timedelta(hours=1, minutes=30)
    r = api.post("/predictions", json={**good, "version": BASE_VERSION[-64:]})  # the bare id
    assert r.status_code == 201 and r.json()["model"] == "stability-ai/sdxl" and "deadline" not in r.json()

    # The client says a refusal is final, with the problem's detail.
    predictor = predictor_for(fake)
    with pytest.raises(ProviderError) as refused:
        predictor.start(unknown_version, good["input"])
    assert refused.value.retryable is False and "422" in str(refused.value)
    assert "The specified version does not exist" in str(refused.value)
    with pytest.raises(ProviderError) as refused:
        predictor.start(BASE_VERSION, {"prompt": "x", "lora_sclae": 1})
    assert refused.value.retryable is False and "lora_sclae" in str(refused.value)
    with pytest.raises(ProviderNotFound):
        predictor.get("nope")
    assert len(fake.predictor.items) == 2


def test_a_running_prediction_is_canceled_and_deadlines_end_the_rest(held: FakeReplicate) -> None:
    fake = held
    predictor = predictor_for(fake)
    first, second, third = (predictor.start(BASE_VERSION, {"prompt": f"p{i}"}) for i in range(3))
    assert fake.predictor.wait_for(first, [PredictionStatus.processing], timeout=10)
    # One machine: the others wait for it, starting.
    assert predictor.get(second).status == predictor.get(third).status == PredictionStatus.starting

    polls: list[Prediction] = []
    running = predictor.wait(first, timeout_s=0.3, on_poll=polls.append)
    assert running.status == PredictionStatus.processing and not running.terminal  # timed out
    assert polls and polls[-1] == running

    canceled = predictor.cancel(first)
    assert canceled.status == PredictionStatus.canceled and canceled.metrics
    assert predictor.cancel(first).status == PredictionStatus.canceled  # again: as it is
    with pytest.raises(ProviderError, match="canceled on Replicate"):
        predictor.output_bytes(canceled)

    # Past its deadline (Cancel-After) a prediction that never started is aborted ...
    fake.predictor.items[third].deadline = time.time()
    aborted = predictor.get(third)
    assert aborted.status == PredictionStatus.aborted and aborted.metrics
    assert aborted.metrics.predict_time == 0.0 and "aborted" in (prediction_end_reason(aborted) or "")
    # ... and one that runs is canceled.
    assert fake.predictor.wait_for(second, [PredictionStatus.processing], timeout=10)
    fake.predictor.items[second].deadline = time.time()
    assert predictor.wait(second, timeout_s=10).status == PredictionStatus.canceled


@pytest.mark.parametrize("lost", ["late", "drop"])
def test_a_lost_create_is_retried_and_every_copy_has_a_deadline(held: FakeReplicate, lost: str) -> None:
    """Predictions have no idempotency key: the retry is a second prediction (one more image),
    and neither outlives the lifetime the client gave it."""
    fake = held
    fake.lose_next_prediction = lost  # type: ignore[assignment]
    predictor = predictor_for(fake, prediction_deadline_s=120.0)
    prediction_id = predictor.start(BASE_VERSION, {"prompt": "a photo"})
    assert len(fake.predictor.items) == 2 and prediction_id in fake.predictor.items
    for p in fake.predictor.items.values():
        assert p.deadline is not None and p.deadline - p.created_at == 120.0


def test_a_create_waits_out_429_and_never_repeats_a_refusal() -> None:
    """The create is retried as every call is: after a 429 no sooner than its ``Retry-After``;
    a 4xx refusal is final at once."""
    answers = [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"title": "Too Many Requests", "status": 429}),
        httpx.Response(201, json=_prediction_json("p1")),
        httpx.Response(422, json={"title": "Invalid version", "detail": "no such version", "status": 422}),
    ]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    slept: list[float] = []
    predictor = ReplicatePredictor(
        ReplicateConfig(api_token=TOKEN, destination=DESTINATION, prediction_deadline_s=60.0),
        sleep=slept.append,
        transport=httpx.MockTransport(answer),
    )
    assert predictor.start(BASE_VERSION, {"prompt": "x"}) == "p1"
    assert slept == [7.0] and len(seen) == 2
    assert all(r.url.path == "/v1/predictions" and r.headers["cancel-after"] == "60s" for r in seen)
    with pytest.raises(ProviderError, match="no such version") as refused:
        predictor.start(BASE_VERSION, {"prompt": "x"})
    assert refused.value.retryable is False and len(seen) == 3 and slept == [7.0]


def _prediction_json(prediction_id: str) -> dict[str, Any]:
    """A just-created prediction, as the document's example shows one."""
    return {
        "id": prediction_id,
        "model": "stability-ai/sdxl",
        "version": BASE_VERSION[-64:],
        "input": {"prompt": "x"},
        "output": None,
        "error": None,
        "data_removed": False,
        "status": "starting",
        "created_at": "2026-03-01T12:00:00Z",
        "urls": {
            "web": f"https://replicate.com/p/{prediction_id}",
            "get": f"https://api.replicate.com/v1/predictions/{prediction_id}",
            "cancel": f"https://api.replicate.com/v1/predictions/{prediction_id}/cancel",
        },
    }
