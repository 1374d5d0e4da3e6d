"""Temporal workflows. Deterministic code only: no I/O, no torch/psycopg imports.

**The rule for changing a workflow.** A training can wait a day for its images and then train
for hours, so every deploy meets workflows in flight, and a worker replays their histories
against the new code. So:

1. A change that adds, removes or reorders the commands a workflow issues (activities, timers,
   child workflows, signals to others, search-attribute upserts, markers) goes behind
   ``if workflow.patched("what-changed"):`` with the old code in the ``else``; the patch id is a
   module constant beside the others (e.g. ``lora_training.PATCH_CREATE_POD_FINISHES_ON_CANCEL``).
2. Record the history that proves it: a test that runs the new path calls
   ``record_history(handle, "name")`` and is marked ``records_history``; ``make histories``
   writes it to ``tests/workflows/histories/``; commit it beside the old ones, which must keep
   replaying (``tests/workflows/test_replay.py`` replays every one on each ``make test``).
3. Once no workflow started before the patch can still be running, ``workflow.deprecate_patch``
   and the old branch can go, with the histories that needed it.

Changes that issue the same commands (a message, a query's answer, a default only new inputs
read) need none of this; the replay tests say whether a change is one of them.
"""

from __future__ import annotations

from workflows.creator_email import CreatorEmailWorkflow
from workflows.job_loras import JobLorasWorkflow
from workflows.lora_training import TrainLoraWorkflow
from workflows.pod_sweep import SweepOrphanPodsWorkflow
from workflows.trending import RefreshTrendingWorkflow
from workflows.validation_purge import PurgeValidationImagesWorkflow

WORKFLOWS: list[type] = [
    TrainLoraWorkflow,
    JobLorasWorkflow,
    PurgeValidationImagesWorkflow,
    SweepOrphanPodsWorkflow,
    CreatorEmailWorkflow,
    RefreshTrendingWorkflow,
]
