"""Review (sql/0013_moderation.sql): the admins' queue and their hide/restore decisions. Runs as
the caller: the database itself refuses a non-admin (RLS on the queue's tables, and the check
inside ``lora_moderate``), whatever the API checked first."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import psycopg

from loraflow.errors import LoraNotFound, ModerationRefused

__all__ = ["Decision", "moderate", "review_queue"]


class Decision(enum.StrEnum):
    hide = "hide"
    restore = "restore"


#: LoRAs waiting for a decision, oldest first: those with open reports, and those hidden (by
#: automatic screening, or by reports) that no decision has looked at since.
_QUEUE = """
WITH reported AS (
  SELECT lora_model_id AS id, min(created_at) AS since,
         json_agg(json_build_object('id', id, 'reason', reason, 'note', note, 'reporter_id', user_id,
                                    'created_at', created_at) ORDER BY id) AS reports
    FROM lora_reports WHERE status = 'open' GROUP BY lora_model_id
), flagged AS (
  SELECT m.id, m.hidden_at AS since FROM lora_models m
   WHERE m.hidden_at IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM lora_moderation_log l
                      WHERE l.lora_model_id = m.id AND l.created_at >= m.hidden_at)
), queue AS (
  SELECT id, least(r.since, f.since) AS since, coalesce(r.reports, '[]'::json) AS reports
    FROM reported r FULL JOIN flagged f USING (id)
   ORDER BY since, id LIMIT %s OFFSET %s
)
SELECT q.since, q.reports, m.* FROM queue q JOIN lora_library m ON m.id = q.id ORDER BY q.since, q.id
"""


async def review_queue(
    conn: psycopg.AsyncConnection[Any], *, limit: int, offset: int
) -> list[dict[str, Any]]:
    """One page of the queue: each LoRA's row (``lora_library``), ``since`` and ``reports``."""
    return await (await conn.execute(_QUEUE, [limit, offset])).fetchall()


async def moderate(
    conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID, decision: Decision, reason: str
) -> int:
    """Hide or restore the LoRA, close its open reports, and log the decision; the log entry's id."""
    try:
        async with conn.transaction():
            row = await (
                await conn.execute(
                    "SELECT lora_moderate(%s, %s, %s) AS entry", [lora_id, decision.value, reason]
                )
            ).fetchone()
    except psycopg.errors.NoDataFound as exc:
        raise LoraNotFound(lora_id) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ModerationRefused(exc.diag.message_primary or "only an admin can moderate") from exc
    assert row is not None
    return int(row["entry"])
