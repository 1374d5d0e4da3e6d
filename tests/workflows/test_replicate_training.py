"""The fallback for real: RunPod (the local RunPod-speaking server) has no instances of any GPU
type, so the training goes to Replicate (the local server speaking Replicate's API as its
document says, whose trainer really trains), and completes: stored with its trained tokens,
validated with them, costed, with no pod anywhere, and one training although the answer to the
create was lost."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from loraflow.contracts.lora_training import TrainingOutcome, TrainLoraInput
from loraflow.contracts.names import train_workflow_id
from loraflow.devstack.embedded import stop_process
from loraflow.settings import Settings
from loraflow.storage.local import LocalStorage
from tests.fakes.replicate import FakeReplicate
from tests.fakes.runpod import FakeRunPod
from tests.fakes.server import serve
from tests.helpers.histories import record_history
from tests.helpers.loras import assert_every_phase_ran, new_lora, upload_images
from tests.helpers.worker_process import start_worker
from training_scripts.tiny_model import TINY_TRAINING_PARAMS

TASK_QUEUE = "loraflow-replicate-test"
GPUS = ["NVIDIA L40S", "NVIDIA GeForce RTX 4090"]


@pytest.mark.records_history
async def test_no_gpu_at_runpod_falls_back_to_replicate(
    worker: Settings,
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    pg_dsn: str,
    tiny_model: Path,
    tmp_path: Path,
    api_url: str,  # Replicate fetches the dataset zip by its signed URL, which the API serves
) -> None:
    runpod = FakeRunPod(api_key="rp", workdir=tmp_path / "runpod", no_instances=set(GPUS))
    replicate = FakeReplicate("r8_test", tmp_path / "replicate", str(tiny_model), dict(TINY_TRAINING_PARAMS))
    replicate.lose_next_create = "drop"  # the training is made, the answer never arrives
    user_id, lora_id = await new_lora(pool)
    keys = upload_images(settings, user_id, lora_id)
    log = tmp_path / "worker.log"
    with serve(runpod.app()) as runpod_url, serve(replicate.app()) as replicate_url:
        replicate.url = replicate_url
        process = start_worker(
            settings,
            TASK_QUEUE,
            log,
            LORAFLOW_COMPUTE_PROVIDER="runpod",
            LORAFLOW_RUNPOD_API_KEY="rp",
            LORAFLOW_RUNPOD_BASE_URL=runpod_url,
            LORAFLOW_RUNPOD_GPU_TYPES=",".join(GPUS),
            LORAFLOW_POD_TOKEN_SECRET="test-pod-secret",
            LORAFLOW_REPLICATE_API_TOKEN="r8_test",
            LORAFLOW_REPLICATE_BASE_URL=replicate_url,
            LORAFLOW_REPLICATE_DESTINATION="loraflow/characters",
        )
        try:
            outcome = await asyncio.wait_for(
                temporal_env.client.execute_workflow(
                    "TrainLoraWorkflow",
                    TrainLoraInput(
                        lora_id=lora_id,
                        user_id=user_id,
                        image_keys=keys,
                        params=TINY_TRAINING_PARAMS,
                        replicate_fallback=True,
                        validation_steps=10,
                    ),
                    id=train_workflow_id(lora_id),
                    task_queue=TASK_QUEUE,
                    result_type=TrainingOutcome,
                ),
                timeout=600,
            )
            keyframe, refusal = await asyncio.to_thread(_replicate_keyframes, replicate_url, pg_dsn, lora_id)
        finally:
            stop_process(process)
            replicate.close()
            runpod.close()

    assert outcome.stored is not None, log.read_text()[-3000:]
    assert_every_phase_ran(outcome)
    assert runpod.pods == {}  # no pod was ever made
    (training,) = replicate.trainings.values()  # one, though the create's answer was lost
    assert training.status == "succeeded" and training.destination == "loraflow/characters"
    assert (
        training.input["token_string"] == "ohwx"
        and training.input["max_train_steps"] == TINY_TRAINING_PARAMS["steps"]
    )
    assert outcome.stored is not None and outcome.cost_usd > 0
    # LORAFLOW_KEYFRAMES=replicate: this LoRA's keyframe is a prediction of its trained version;
    # a LoRA with no Replicate training (one trained on a pod) is refused with the way out.
    with Image.open(io.BytesIO(keyframe)) as png:
        assert png.format == "PNG" and png.size == (64, 64)
    assert "LORAFLOW_KEYFRAMES=local" in refusal
    # Validated through predictions: each prompt with the trained version (lora_scale 1) and with
    # the base SDXL version (the control), same seed.
    made = [p for p in replicate.predictor.items.values() if p.input["seed"] >= 1000]  # not the keyframe
    trained = [p for p in made if p.lora is not None]
    base = [p for p in made if p.lora is None]
    assert len(trained) == len(base) == 3 and all(p.status == "succeeded" for p in made)
    assert sorted(p.input["seed"] for p in trained) == sorted(p.input["seed"] for p in base)
    assert all(p.input["lora_scale"] == 1.0 for p in trained)
    assert outcome.validation is not None and outcome.validation.chosen == "final"
    # The stored LoRA carries the tokens it was trained with (validation used them).
    from safetensors import safe_open

    stored = tmp_path / "stored.safetensors"
    stored.write_bytes(b"".join(LocalStorage(Path(settings.data_dir) / "storage").get(outcome.stored.key)))
    with safe_open(str(stored), "np") as f:
        assert f.metadata()["loraflow.token_map"] == '{"ohwx": "<s0><s1>"}'
        assert (f.get_tensor("loraflow.embeddings.clip_l") == training.embeddings["text_encoders_0"]).all()
        assert (f.get_tensor("loraflow.embeddings.clip_g") == training.embeddings["text_encoders_1"]).all()
    with psycopg.connect(pg_dsn) as conn:
        (pod_id,) = conn.execute(
            "SELECT runpod_pod_id FROM lora_training_jobs WHERE lora_model_id = %s", [lora_id]
        ).fetchone()
    assert pod_id == f"replicate:{training.id}"
    await record_history(
        temporal_env.client.get_workflow_handle(train_workflow_id(lora_id)), "train_replicate_fallback"
    )


def _replicate_keyframes(replicate_url: str, dsn: str, lora_id: str) -> tuple[bytes, str]:
    """The keyframe the Replicate backend makes for the trained LoRA, and its refusal of a LoRA
    Replicate never trained."""
    from loraflow.compute.replicate import ReplicateConfig, ReplicatePredictor, ReplicateTrainer
    from loraflow.domain.clips import AppliedLora
    from loraflow.errors import ProviderError
    from loraflow.ml.replicate_keyframes import ReplicateKeyframes

    config = ReplicateConfig(api_token="r8_test", destination="loraflow/characters", base_url=replicate_url)
    keyframes = ReplicateKeyframes(ReplicatePredictor(config), ReplicateTrainer(config), dsn=dsn)
    lora = AppliedLora(lora_id, "unused", "unused", 0.8, "ohwx", "sdxl")
    made = keyframes.generate(lora, "unused", "ohwx character walking in a market", seed=3)
    try:
        keyframes.generate(replace(lora, lora_id=str(uuid.uuid4())), "unused", "a prompt", seed=3)
    except ProviderError as exc:
        return made, str(exc)
    raise AssertionError("a LoRA with no Replicate training got a keyframe")
