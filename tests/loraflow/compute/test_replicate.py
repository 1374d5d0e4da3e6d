"""ReplicateTrainer against a local server speaking Replicate's trainings API: a create whose
response is lost is found again (Replicate's client does not retry POSTs), and cancel ends it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loraflow.compute.replicate import ReplicateConfig, ReplicateTrainer, training_input
from tests.fakes.replicate import FakeReplicate
from tests.fakes.server import serve
from training_scripts.tiny_model import TINY_TRAINING_PARAMS

TOKEN = "r8_test"


@pytest.fixture
def fake(tmp_path: Path, tiny_model: Path) -> Iterator[tuple[FakeReplicate, str]]:
    replicate = FakeReplicate(TOKEN, tmp_path / "replicate", str(tiny_model), dict(TINY_TRAINING_PARAMS))
    with serve(replicate.app()) as url:
        replicate.url = url
        yield replicate, url
    replicate.close()


def test_a_lost_create_is_found_not_repeated_and_cancel_ends_it(
    fake: tuple[FakeReplicate, str], tmp_path: Path
) -> None:
    replicate, url = fake
    import zipfile

    from loraflow.demo import draw_character

    images = tmp_path / "dataset.zip"
    with zipfile.ZipFile(images, "w") as z:
        for i in range(3):
            z.writestr(f"{i}.png", draw_character(i))
    trainer = ReplicateTrainer(
        ReplicateConfig(api_token=TOKEN, destination="loraflow/characters", base_url=url, timeout_s=1.0),
        sleep=lambda _: None,
    )
    replicate.lose_next_create = True
    training_id = trainer.start(images.as_uri(), {"steps": 2, "trigger_word": "zxq"})
    assert list(replicate.trainings) == [training_id]  # one training, not two
    (created,) = replicate.trainings.values()
    assert created.destination == "loraflow/characters"
    assert created.input == training_input(images.as_uri(), {"steps": 2, "trigger_word": "zxq"})
    assert trainer.start(images.as_uri(), {"steps": 2}) == training_id  # a retried activity too

    ended = trainer.cancel(training_id)
    assert ended.status in ("canceled", "succeeded")  # a 2-step training may finish first
    assert trainer.cancel(training_id).status == ended.status  # idempotent


async def test_the_sweeper_cancels_replicate_trainings_nothing_owns(
    fake: tuple[FakeReplicate, str], tmp_path: Path, temporal_env: object, pg_dsn: str
) -> None:
    import zipfile

    from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

    from activities.sweeper import SweeperActivities
    from loraflow.demo import draw_character

    assert isinstance(temporal_env, WorkflowEnvironment)
    replicate, url = fake
    images = tmp_path / "orphan.zip"
    with zipfile.ZipFile(images, "w") as z:
        for i in range(3):
            z.writestr(f"{i}.png", draw_character(i))
    trainer = ReplicateTrainer(
        ReplicateConfig(api_token=TOKEN, destination="loraflow/characters", base_url=url)
    )
    orphan = trainer.start(images.as_uri(), {"steps": 400})  # long enough to be running when swept
    sweeper = SweeperActivities(providers=[], client=temporal_env.client, replicate=trainer, dsn=pg_dsn)
    cancelled = await ActivityEnvironment().run(sweeper.sweep_orphan_pods, 3 * 3600.0)
    assert cancelled == [f"replicate:{orphan}"]
    assert replicate.trainings[orphan].status == "canceled"
