"""Every recorded history (tests/workflows/histories/, written by `make histories` from runs on the
real dev server) replays against today's workflow code. A change that adds, removes or reorders a
workflow's commands fails here unless it sits behind ``workflow.patched``: the rule is in
workflows/__init__.py."""

from __future__ import annotations

import json

import pytest
from temporalio.worker import Replayer

from tests.helpers.histories import RecordedHistory, load_histories
from workflows import WORKFLOWS
from workflows.lora_training import (
    PATCH_CREATE_POD_FINISHES_ON_CANCEL,
    PATCH_EMAIL_ON_OUTCOME,
    PATCH_RETRAIN_ON_LOST_POD,
    PATCH_VALIDATE_ON_MACHINE,
)

RECORDED = {h.name: h for h in load_histories()}
#: The scenarios that must stay recorded: each path through the workflows that issues its own
#: sequence of commands.
REQUIRED = {
    # Recorded before the patches and never re-recorded (no test writes it): what proves each
    # patch keeps old histories replaying.
    "train_completed_before_patches",
    # Recorded before validate-on-machine (copies of the histories of that day, frozen): the old
    # path (download, cleanup, store, validate in the worker) on a pod, failing, and on Replicate.
    "train_completed_before_validate_on_machine",
    "train_validation_failed_before_validate_on_machine",
    "train_replicate_fallback_before_validate_on_machine",
    # Recorded before email-on-outcome (a copy of that day's train_completed, frozen): the end
    # without the creator's e-mail.
    "train_completed_before_email_on_outcome",
    "train_completed",
    "train_pending_timeout",
    "train_replicate_fallback",
    "train_cancelled",
    "train_cost_cap",
    "train_time_cap",
    "train_validation_failed",
    "job_two_characters",
    # Recorded with the patches: their new paths.
    "train_cancelled_while_creating_pod",
    "train_pod_lost_retrained",
    "train_kept_middle_checkpoint",
    # The creator's e-mail (CreatorEmailWorkflow): a 4xx refusal, retried, then delivered.
    "creator_email_retried",
}


def _markers(recorded: RecordedHistory) -> set[str]:
    """The ids of the patches a history recorded (``workflow.patched`` writes a marker)."""
    return {
        json.loads(payload.data)["id"]
        for e in recorded.history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
        for payload in e.marker_recorded_event_attributes.details["patch-data"].payloads
    }


def test_every_required_scenario_is_recorded() -> None:
    assert set(RECORDED) >= REQUIRED


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_history_replays_against_todays_code(name: str) -> None:
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(
        RECORDED[name].history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure


@pytest.mark.parametrize(
    ("patch", "before", "after"),
    [
        (PATCH_CREATE_POD_FINISHES_ON_CANCEL, ["train_completed_before_patches"],
         ["train_cancelled_while_creating_pod"]),
        (PATCH_RETRAIN_ON_LOST_POD, ["train_completed_before_patches"], ["train_pod_lost_retrained"]),
        (PATCH_VALIDATE_ON_MACHINE,
         ["train_completed_before_validate_on_machine", "train_validation_failed_before_validate_on_machine",
          "train_replicate_fallback_before_validate_on_machine"],
         ["train_completed", "train_validation_failed", "train_replicate_fallback",
          "train_kept_middle_checkpoint"]),
        (PATCH_EMAIL_ON_OUTCOME,
         ["train_completed_before_email_on_outcome", "train_validation_failed", "train_replicate_fallback",
          "train_cancelled"],
         ["train_completed"]),
    ],
)  # fmt: skip
def test_each_patch_is_proved_by_histories_from_before_it_and_after(
    patch: str, before: list[str], after: list[str]
) -> None:
    """The ``before`` histories were recorded before the patch (no marker) and still replay above,
    down the old branch; the ``after`` ones were recorded with it and take the new one."""
    for name in before:
        assert patch not in _markers(RECORDED[name]), name
    for name in after:
        assert patch in _markers(RECORDED[name]), name
