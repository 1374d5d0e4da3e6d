"""Temporal workflows. Deterministic code only: no I/O, no torch/psycopg imports."""

from __future__ import annotations

WORKFLOWS: list[type] = []
