"""The training budget's rules: a month's spend against its limit and alert threshold, and
what a refused training is told. The spend itself is read by ``loraflow.db.budget``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from loraflow.settings import Settings

__all__ = ["BudgetStatus", "budget_status", "exhausted_message", "is_exhausted"]


@dataclass(frozen=True)
class BudgetStatus:
    """This month's spend and what follows from it (the API shows it as ``BudgetStatusPublic``)."""

    month: str  # YYYY-MM, UTC
    spent_usd: float
    limit_usd: float
    alert_usd: float
    refusing: bool


def is_exhausted(spent: Decimal, settings: Settings) -> bool:
    return float(spent) >= settings.monthly_budget_usd


def budget_status(spent: Decimal, settings: Settings) -> BudgetStatus:
    return BudgetStatus(
        month=datetime.now(UTC).strftime("%Y-%m"),
        spent_usd=float(spent),
        limit_usd=settings.monthly_budget_usd,
        alert_usd=settings.budget_alert_usd,
        refusing=is_exhausted(spent, settings),
    )


def exhausted_message(spent: Decimal, limit: float) -> str:
    first = _next_month(datetime.now(UTC)).strftime("%B 1")
    return (
        f"this month's training budget (${limit:.2f}) is spent (${spent:.2f}); "
        f"new trainings are accepted again from {first} (UTC)"
    )


def _next_month(now: datetime) -> datetime:
    return now.replace(year=now.year + (now.month == 12), month=now.month % 12 + 1, day=1)
