"""ReplicateTrainer and the Replicate activities against the strict fake (tests/fakes/replicate.py),
which follows Replicate's OpenAPI document: create stays one training across re-signed URLs and
lost answers, ``aborted`` is terminal (and cleanup of it ends), trainings without a destination
are still found by the sweeper (and others' are left alone), file URLs need the token, and the
trained token embeddings survive into the stored LoRA and load into the pipeline."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.library import _safetensors_metadata
from activities.replicate import ReplicateActivities
from activities.sweeper import SweeperActivities
from loraflow.compute.replicate import ReplicateConfig, ReplicateTrainer, end_reason, training_input
from loraflow.compute.replicate_api import Training, TrainingStatus
from loraflow.contracts.lora_training import (
    ReplicateCancelInput,
    ReplicateDownloadInput,
    ReplicatePollInput,
    ReplicateTrainingHandle,
)
from loraflow.contracts.maintenance import SweepOrphanPodsInput
from loraflow.contracts.names import replicate_dataset_key
from loraflow.errors import ProviderError
from loraflow.storage.local import LocalStorage
from tests.fakes.replicate import FakeReplicate
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


def trainer_for(fake: FakeReplicate, **config: Any) -> ReplicateTrainer:
    return ReplicateTrainer(
        ReplicateConfig(
            **{"api_token": TOKEN, "destination": DESTINATION, "base_url": fake.url, "timeout_s": 1.0}
            | config
        ),
        sleep=lambda _: None,
    )


def _activities(storage: LocalStorage, trainer: ReplicateTrainer) -> ReplicateActivities:
    unused = ConnectionPool("", open=False)  # polling, downloading and cancelling need no database
    return ReplicateActivities(pool=unused, storage=storage, trainer=trainer)


def wait_for(get: Callable[[], Training], *statuses: TrainingStatus, timeout: float = 30) -> Training:
    deadline = time.monotonic() + timeout
    while (current := get()).status not in statuses:
        assert time.monotonic() < deadline, f"still {current.status}"
        time.sleep(0.05)
    return current


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


def test_the_weights_keep_the_trained_tokens(tmp_path: Path, tiny_model: Path) -> None:
    """The fake trainer really trains (2 steps); the staged LoRA carries ``<s0><s1>``, which
    load into both text encoders of the tiny SDXL pipeline with the trained rows."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    from loraflow.devstack.demo import draw_character
    from loraflow.ml.trained_tokens import TrainedTokens, load_trained_tokens, use_trained_tokens, with_tokens

    storage = LocalStorage(tmp_path / "storage")
    with zipfile.ZipFile(archive := tmp_path / "dataset.zip", "w") as z:
        for i in range(3):
            z.writestr(f"{i}.png", draw_character(i))
    storage.put(replicate_dataset_key("lora-e"), [archive.read_bytes()])
    replicate = FakeReplicate(TOKEN, tmp_path / "replicate", str(tiny_model), dict(TINY_TRAINING_PARAMS))
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
        assert done.output and done.output.weights
        assert httpx.get(done.output.weights).status_code == 401  # Replicate's file URLs need the token

        activities = _activities(storage, trainer)
        ref = ReplicateTrainingHandle(training_id, 3.51, time.time())
        download = ReplicateDownloadInput("lora-e", ref)
        staged = ActivityEnvironment().run(activities.replicate_download, download)
        assert ActivityEnvironment().run(activities.replicate_download, download) == staged  # retry
        billed = ActivityEnvironment().run(activities.replicate_cancel, ReplicateCancelInput(ref)).billed_s
        assert billed > 0  # succeeded: billed
    replicate.close()

    path = tmp_path / "lora.safetensors"
    path.write_bytes(b"".join(storage.get(staged.key)))
    data = path.read_bytes()
    metadata = _safetensors_metadata(data[: 1 << 16], len(data))  # what store_lora accepts
    assert metadata["loraflow.token_map"] == '{"ohwx": "<s0><s1>"}'

    pipe = StableDiffusionXLPipeline.from_pretrained(str(tiny_model))
    pipe.load_lora_weights(str(path), adapter_name="replicate")  # the embeddings do not disturb it
    token_map = load_trained_tokens(pipe, str(path))
    assert token_map == {"ohwx": "<s0><s1>"}
    trained = replicate.trainings[training_id].embeddings
    prompt = with_tokens("a photo of ohwx character", token_map)
    assert prompt == "a photo of <s0><s1> character"
    encoders = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
    for i, (tokenizer, encoder) in enumerate(encoders):
        ids = tokenizer.convert_tokens_to_ids(["<s0>", "<s1>"])
        assert {"<s0>", "<s1>"} <= set(tokenizer.get_added_vocab())
        rows = encoder.get_input_embeddings().weight[ids]
        assert torch.equal(rows, torch.from_numpy(trained[f"text_encoders_{i}"]))
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
