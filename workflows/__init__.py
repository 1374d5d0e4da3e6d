"""Temporal workflows. Deterministic code only: no I/O, no torch/psycopg imports."""

from __future__ import annotations

from workflows.job_loras import JobLorasWorkflow
from workflows.purge_validation import PurgeValidationImagesWorkflow
from workflows.sweep_pods import SweepOrphanPodsWorkflow
from workflows.train_lora import TrainLoraWorkflow

WORKFLOWS: list[type] = [
    TrainLoraWorkflow,
    JobLorasWorkflow,
    PurgeValidationImagesWorkflow,
    SweepOrphanPodsWorkflow,
]
