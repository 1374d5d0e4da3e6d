"""``plan_clip``: the apply step as an activity. The video generator registers it on its own
worker (``ApplyActivities(...).plan_clip``), or executes it by name on loraflow's task queue."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import heartbeating
from loraflow.contracts.errors import ErrorType
from loraflow.domain.clips import ClipPlan, ClipPlanner, ClipRequest
from loraflow.errors import UnknownVideoModel


class ApplyActivities:
    def __init__(self, planner: ClipPlanner) -> None:
        self._planner = planner

    @activity.defn(name="plan_clip")
    def plan_clip(self, request: ClipRequest) -> ClipPlan:
        """Idempotent: a retry plans the same clip again and counts its usage once."""
        try:
            # A keyframe can take a while on a busy GPU: beats, so a lost worker is noticed.
            with heartbeating("planning"):
                return self._planner.plan(request)
        except UnknownVideoModel as exc:
            raise ApplicationError(str(exc), type=ErrorType.UNKNOWN_VIDEO_MODEL, non_retryable=True) from exc
