"""Reports of LoRAs (sql/0011_reports.sql), filed as the caller: RLS makes them file in their own
name; the database allows one open report per user per LoRA and 10 per user an hour, and hides
a LoRA that enough distinct users report."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import psycopg

from loraflow.errors import LoraNotFound, ReportRefused

__all__ = ["ReportReason", "file_report"]


class ReportReason(enum.StrEnum):
    sexual = "sexual"
    minor = "minor"
    violence = "violence"
    hate = "hate"
    impersonation = "impersonation"
    copyright = "copyright"
    spam = "spam"
    other = "other"


async def file_report(
    conn: psycopg.AsyncConnection[Any],
    lora_id: uuid.UUID,
    user_id: str,
    reason: ReportReason,
    note: str | None,
) -> int:
    """The new report's id."""
    visible = await (await conn.execute("SELECT 1 FROM lora_models WHERE id = %s", [lora_id])).fetchone()
    if visible is None:  # no such LoRA, or hidden (RLS shows a hidden one to its creator only)
        raise LoraNotFound(lora_id)
    await conn.execute("SELECT loraflow_ensure_user()")
    try:
        async with conn.transaction():
            row = await (
                await conn.execute(
                    """INSERT INTO lora_reports (lora_model_id, user_id, reason, note)
                       VALUES (%s, %s, %s, %s) RETURNING id""",
                    [lora_id, user_id, reason.value, note],
                )
            ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise ReportRefused("you already have an open report of this LoRA", limit=False) from exc
    except psycopg.errors.CheckViolation as exc:
        message = exc.diag.message_primary or "the report was refused"
        raise ReportRefused(message, limit="an hour" in message) from exc
    assert row is not None
    return int(row["id"])
