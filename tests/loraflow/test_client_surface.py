"""The platform client's public surface is what the video platform codes against: it changes only
on purpose (this list changes with it)."""

from __future__ import annotations

import loraflow.client


def test_public_names_are_pinned() -> None:
    assert sorted(loraflow.client.__all__) == sorted(
        [
            "DEFAULT_GPU_TASK_QUEUE",
            "DEFAULT_TASK_QUEUE",
            "BudgetExhausted",
            "ClipPlan",
            "ClipRequest",
            "DuplicateName",
            "InputRejected",
            "JobLoraRequest",
            "JobLoraStatus",
            "JobLoraStatusRequest",
            "LoraJobs",
            "MonthlyLimitReached",
            "ReferenceImage",
            "Refused",
            "TrainingStatus",
            "job_lora_status",
            "plan_clip",
            "send_character_references",
        ]
    )
    for name in loraflow.client.__all__:
        assert hasattr(loraflow.client, name), name
