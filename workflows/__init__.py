"""Temporal workflows. Deterministic code only: no I/O, no torch/psycopg imports."""

from __future__ import annotations

from workflows.job_loras import JobLorasWorkflow
from workflows.lora_training import TrainLoraWorkflow
from workflows.pod_sweep import SweepOrphanPodsWorkflow
from workflows.validation_purge import PurgeValidationImagesWorkflow

WORKFLOWS: list[type] = [
    TrainLoraWorkflow,
    JobLorasWorkflow,
    PurgeValidationImagesWorkflow,
    SweepOrphanPodsWorkflow,
]
