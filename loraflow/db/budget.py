"""The training budget ($200 a month by default): what has been spent, the alert at $150, and
the refusal of new trainings once it is spent.

Spend is the sum of ``job_costs`` for the current UTC calendar month (trainings and keyframes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from loraflow.errors import BudgetExhausted
from loraflow.logging import get_logger
from loraflow.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class BudgetStatus:
    month: str  # YYYY-MM
    spent_usd: float
    limit_usd: float
    alert_usd: float
    refusing: bool


def status_from(spent: Decimal, settings: Settings) -> BudgetStatus:
    return BudgetStatus(
        month=datetime.now(UTC).strftime("%Y-%m"),
        spent_usd=float(spent),
        limit_usd=settings.monthly_budget_usd,
        alert_usd=settings.budget_alert_usd,
        refusing=float(spent) >= settings.monthly_budget_usd,
    )


async def month_spend(conn: Any) -> Decimal:
    row = await (await conn.execute("SELECT loraflow_month_spend() AS spent")).fetchone()
    return Decimal(row["spent"] if isinstance(row, dict) else row[0])


async def check_can_train(conn: Any, settings: Settings) -> None:
    """Refuse a new training once the month's budget is spent."""
    spent = await month_spend(conn)
    if float(spent) >= settings.monthly_budget_usd:
        raise BudgetExhausted(_exhausted_message(spent, settings.monthly_budget_usd))


def alert_if_crossed(conn: Any, settings: Settings) -> bool:
    """After a cost was recorded (sync connection): fire the alert once a month when the spend
    reaches the alert threshold. True if this call fired it."""
    spent = Decimal(conn.execute("SELECT loraflow_month_spend()").fetchone()[0])
    if float(spent) < settings.budget_alert_usd:
        return False
    fired = conn.execute(
        """INSERT INTO budget_alerts (month, threshold, spent)
           VALUES (date_trunc('month', now() AT TIME ZONE 'UTC')::date, %s, %s) ON CONFLICT DO NOTHING""",
        [settings.budget_alert_usd, spent],
    ).rowcount
    if not fired:
        return False
    log.error(
        "training_budget_alert",
        spent_usd=float(spent),
        alert_usd=settings.budget_alert_usd,
        limit_usd=settings.monthly_budget_usd,
    )
    if settings.budget_alert_webhook_url:
        body = {"type": "budget.alert", "spent_usd": float(spent), "alert_usd": settings.budget_alert_usd,
                "limit_usd": settings.monthly_budget_usd}  # fmt: skip
        try:
            httpx.post(settings.budget_alert_webhook_url, content=json.dumps(body), timeout=10,
                       headers={"content-type": "application/json"})  # fmt: skip
        except httpx.HTTPError as exc:  # the structlog error above is the alert of record
            log.warning("budget_alert_webhook_failed", error=str(exc))
    return True


def _exhausted_message(spent: Decimal, limit: float) -> str:
    first = _next_month(datetime.now(UTC)).strftime("%B 1")
    return (
        f"this month's training budget (${limit:.2f}) is spent (${spent:.2f}); "
        f"new trainings are accepted again from {first} (UTC)"
    )


def _next_month(now: datetime) -> datetime:
    return now.replace(year=now.year + (now.month == 12), month=now.month % 12 + 1, day=1)
