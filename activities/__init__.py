"""Temporal activities: the I/O of a training. Each is idempotent and safe to retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from activities.records import RecordActivities
from loraflow.settings import Settings


def build_activities(settings: Settings, pool: AsyncConnectionPool) -> list[Callable[..., Any]]:
    records = RecordActivities(pool)
    return [records.record_status]
