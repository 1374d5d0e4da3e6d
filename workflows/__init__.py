"""Temporal workflows. Deterministic code only: no I/O, no torch/psycopg imports."""

from __future__ import annotations

from workflows.train_lora import TrainLoraWorkflow

WORKFLOWS: list[type] = [TrainLoraWorkflow]
