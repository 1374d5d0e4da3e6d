"""The LoRA library in PostgreSQL: create, list, read, and the service's writes of a LoRA's
training parameters and failure. Persistence only; no HTTP here. (Its dataset: ``datasets``.)"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from loraflow.contracts.status import TrainingStatus
from loraflow.db import Caller
from loraflow.errors import DuplicateName, LoraNotFound, MonthlyLimitReached

#: SQLSTATEs raised by our own triggers (sql/0002_lora_library.sql).
SQLSTATE_MONTHLY_LIMIT = "LF429"
SQLSTATE_NEVER_DELETE = "LF403"


class Sort(enum.StrEnum):
    recent = "recent"
    popular = "popular"
    name = "name"
    top_rated = "top_rated"
    trending = "trending"


_ORDER_BY = {
    Sort.recent: "created_at DESC, id DESC",
    Sort.popular: "usage_count DESC, created_at DESC, id DESC",
    # The damped mean (sql/0009): one 5-star vote does not top the library.
    Sort.top_rated: "rating_score DESC, created_at DESC, id DESC",
    # Uses in the last 30 days (sql/0012), kept on the row so an index serves the order.
    Sort.trending: "uses_30d DESC, created_at DESC, id DESC",
    Sort.name: "name ASC, id ASC",
}

_LIST_COLUMNS = (
    "id, name, description, training_status, created_at, usage_count, uses_30d, user_id, "
    "created_by_email, base_model, trigger_word, validation_passed, rating_sum, rating_count, rating_score"
)

#: One list item as the API's ``LoraSummary`` shows it, built by PostgreSQL from a page row ``p``
#: (the mean rounded as ``ratings.RatingSummary``) and the caller's own rating ``mine``.
_ITEM_JSON = """json_build_object(
  'id', p.id, 'name', p.name, 'description', p.description,
  'training_status', p.training_status, 'created_at', p.created_at,
  'created_by', json_build_object('id', p.user_id, 'email', p.created_by_email),
  'usage_count', p.usage_count, 'uses_30d', p.uses_30d, 'base_model', p.base_model,
  'trigger_word', p.trigger_word, 'validation_passed', p.validation_passed,
  'rating', json_build_object(
    'mean', CASE WHEN p.rating_count > 0 THEN round(p.rating_sum::numeric / p.rating_count, 3)::float8 END,
    'count', p.rating_count),
  'my_rating', mine.stars)"""


@dataclass(frozen=True)
class NewLora:
    name: str
    description: str | None = None
    base_model: str = "sdxl"
    trigger_word: str | None = None
    training_params: dict[str, Any] | None = None
    triggered_by_job_id: uuid.UUID | None = None
    character_description: str | None = None


async def create_lora(conn: psycopg.AsyncConnection[Any], caller: Caller, new: NewLora) -> dict[str, Any]:
    """Insert a pending LoRA for the caller. Runs inside ``as_caller`` so RLS applies.

    The monthly limit and per-user name uniqueness are enforced by the database (a trigger
    under a per-user lock, and a unique index), so concurrent requests cannot exceed them.
    """
    await conn.execute("SELECT loraflow_ensure_user()")
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction stays usable
            cur = await conn.execute(*_insert(caller, new))
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise DuplicateName(new.name) from exc
    except psycopg.Error as exc:
        if exc.sqlstate == SQLSTATE_MONTHLY_LIMIT:
            diag = exc.diag
            raise MonthlyLimitReached(
                diag.message_primary or "monthly limit reached", diag.message_detail
            ) from exc
        raise
    assert row is not None
    return row


def _insert(caller: Caller, new: NewLora) -> tuple[sql.Composed, list[Any]]:
    """The INSERT for ``new``, naming only the columns it sets: a client may insert just
    ``(user_id, name, description)`` (sql/0007); what the service sets beside them (a job's
    LoRA) is named only when set."""
    columns: dict[str, Any] = {"user_id": caller.user_id, "name": new.name, "description": new.description}
    service_set = {
        "base_model": None if new.base_model == "sdxl" else new.base_model,
        "trigger_word": new.trigger_word,
        "training_params": None if new.training_params is None else Jsonb(new.training_params),
        "triggered_by_job_id": new.triggered_by_job_id,
        "character_description": new.character_description,
    }
    columns.update({name: value for name, value in service_set.items() if value is not None})
    query = sql.SQL(
        "INSERT INTO lora_models ({}) VALUES ({}) RETURNING id, name, training_status, created_at"
    ).format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns))
    )
    return query, list(columns.values())


@dataclass(frozen=True)
class LibraryFilter:
    """The list's narrowing beyond status and search; each is served by an index (sql/0010)."""

    creator: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    base_model: str | None = None
    min_rating: float | None = None  # the plain mean of the stars; unrated LoRAs drop out
    viewer: uuid.UUID | None = None  # who asks: their own hidden LoRAs show under creator=me

    def conditions(self) -> tuple[list[sql.Composable], list[Any]]:
        chosen = [
            ("user_id = %s", self.creator),
            ("created_at > %s", self.created_after),
            ("created_at < %s", self.created_before),
            ("base_model = %s", self.base_model),
            ("rating_mean >= %s", self.min_rating),
        ]
        kept = [(condition, value) for condition, value in chosen if value is not None]
        return [sql.SQL(c) for c, _ in kept], [v for _, v in kept]


def page_query(
    *,
    status: TrainingStatus | None,
    search: str | None,
    sort: Sort,
    narrow: LibraryFilter | None = None,
) -> tuple[sql.Composed, list[Any], sql.Composed, list[Any]]:
    """The page's SQL and parameters (``LIMIT``/``OFFSET`` last, to be appended) and the total's:
    ``list_page_json`` runs them, ``benchmarks/api_list.py`` explains them."""
    # Hidden LoRAs (reported, pending review) are not in the public list; their creators see
    # them with `creator=me`. (lora_library bypasses RLS, so the rule is spelled out here.)
    own = narrow is not None and narrow.creator is not None and narrow.creator == narrow.viewer
    where: list[sql.Composable] = [] if own else [sql.SQL("hidden_at IS NULL")]
    params: list[Any] = []
    if status:
        where.append(sql.SQL("training_status = %s"))
        params.append(TrainingStatus(status).value)
    if search:
        where.append(sql.SQL("search_text LIKE %s"))
        params.append("%" + _escape_like(search.lower()) + "%")
    narrowed = False
    if narrow is not None:
        conditions, values = narrow.conditions()
        narrowed = bool(conditions)
        where += conditions
        params += values
    where_sql = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
    page = sql.SQL("SELECT {cols} FROM lora_library{where} ORDER BY {order} LIMIT %s OFFSET %s").format(
        cols=sql.SQL(_LIST_COLUMNS), where=where_sql, order=sql.SQL(_ORDER_BY[sort])
    )
    if search or narrowed:
        count = sql.SQL("SELECT count(*) AS total FROM lora_models{where}").format(where=where_sql)
        count_params = params
    else:
        # Without a search or filter, totals come from the trigger-maintained counters (sql/0003).
        count = sql.SQL("SELECT coalesce(sum(n), 0) AS total FROM lora_library_counts{where}").format(
            where=sql.SQL(" WHERE training_status = %s") if status else sql.SQL("")
        )
        count_params = [TrainingStatus(status).value] if status else []
    return page, params, count, count_params


async def list_page_json(
    conn: psycopg.AsyncConnection[Any],
    *,
    status: TrainingStatus | None,
    search: str | None,
    sort: Sort,
    limit: int,
    offset: int,
    narrow: LibraryFilter | None = None,
    viewer: uuid.UUID | None = None,
) -> str:
    """One page of the public library, as the API's ``LoraList`` JSON: built by PostgreSQL in the
    query that finds the page (as PostgREST does), so no row passes through Python objects."""
    page, params, count, count_params = page_query(status=status, search=search, sort=sort, narrow=narrow)
    query = sql.SQL(
        "SELECT json_build_object("
        "'items', coalesce((SELECT json_agg({item} ORDER BY {order}) FROM ({page}) p "
        # The caller's ratings by one index range (idx_lora_ratings_user), not a probe per item.
        "LEFT JOIN (SELECT lora_model_id, stars FROM lora_ratings WHERE user_id = %s) mine "
        "ON mine.lora_model_id = p.id), '[]'::json), "
        "'pagination', json_build_object('total', ({count}), 'limit', %s::int, 'offset', %s::int)"
        ")::text AS body"
    ).format(item=sql.SQL(_ITEM_JSON), order=sql.SQL(_ORDER_BY[sort]), page=page, count=count)
    row = await (
        await conn.execute(query, [*params, limit, offset, viewer, *count_params, limit, offset])
    ).fetchone()
    assert row is not None
    return str(row["body"])


async def get_lora(
    conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID, viewer: str | None = None, *, admin: bool = False
) -> dict[str, Any]:
    """One LoRA; a hidden one only for its creator (``viewer``) and admins, to everyone else not
    found."""
    cur = await conn.execute("SELECT * FROM lora_library WHERE id = %s", [lora_id])
    row = await cur.fetchone()
    if row is None or (row["hidden_at"] is not None and str(row["user_id"]) != viewer and not admin):
        raise LoraNotFound(lora_id)
    return row


async def get_training_status(conn: psycopg.AsyncConnection[Any], lora_id: uuid.UUID) -> dict[str, Any]:
    """The status as the database records it: the LoRA's state and its latest training job."""
    cur = await conn.execute(
        """SELECT m.id, m.training_status, m.error_message, m.updated_at,
                  j.training_progress, j.estimated_remaining
             FROM lora_models m
             LEFT JOIN LATERAL (
               SELECT training_progress, estimated_remaining FROM lora_training_jobs
                WHERE lora_model_id = m.id ORDER BY created_at DESC LIMIT 1
             ) j ON true
            WHERE m.id = %s""",
        [lora_id],
    )
    row = await cur.fetchone()
    if row is None:
        raise LoraNotFound(lora_id)
    return row


async def record_training_params(
    conn: psycopg.AsyncConnection[Any], lora_id: str, params: dict[str, Any]
) -> None:
    """Record the parameters the LoRA trains with (as the service: clients do not choose them)
    and its trigger word."""
    await conn.execute(
        "UPDATE lora_models SET training_params = %s, trigger_word = %s WHERE id = %s",
        [Jsonb(params), params.get("trigger_word"), lora_id],
    )


async def mark_failed(conn: psycopg.AsyncConnection[Any], lora_id: str, reason: str) -> None:
    """End a LoRA that is not finished as failed (which frees its name and does not count
    toward the monthly limit); a finished one is left as it is."""
    await conn.execute(
        """UPDATE lora_models SET training_status = %s, error_message = %s, completed_at = now()
            WHERE id = %s AND training_status <> ALL(%s)""",
        [TrainingStatus.FAILED.value, reason, lora_id, [s.value for s in TrainingStatus if s.finished]],
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
