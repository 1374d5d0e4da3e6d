"""The training budget in PostgreSQL: the month's spend (``job_costs``, UTC calendar month, via
``loraflow_month_spend()``), the refusal of new trainings once it is spent, and the alert
threshold crossed once a month (``budget_alerts``). The rules are ``loraflow.domain.budget``'s;
the alert itself is ``loraflow.alerts``'."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from loraflow.alerts import announce_budget_alert
from loraflow.domain.budget import exhausted_message, is_exhausted
from loraflow.errors import BudgetExhausted
from loraflow.settings import Settings

__all__ = ["alert_if_crossed", "check_can_train", "month_spend"]


async def month_spend(conn: Any) -> Decimal:
    row = await (await conn.execute("SELECT loraflow_month_spend() AS spent")).fetchone()
    return Decimal(row["spent"] if isinstance(row, dict) else row[0])


async def check_can_train(conn: Any, settings: Settings) -> None:
    """Refuse a new training once the month's budget is spent."""
    spent = await month_spend(conn)
    if is_exhausted(spent, settings):
        raise BudgetExhausted(exhausted_message(spent, settings.monthly_budget_usd))


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
    announce_budget_alert(spent, settings)
    return True
