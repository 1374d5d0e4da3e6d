"""Alerts for the people who run loraflow: a structlog error event (the alert of record) and,
when configured, a webhook POST."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx

from loraflow.logging import get_logger
from loraflow.settings import Settings

__all__ = ["announce_budget_alert"]

log = get_logger(__name__)


def announce_budget_alert(spent: Decimal, settings: Settings) -> None:
    """The month's training spend reached the alert threshold (called once a month)."""
    log.error(
        "training_budget_alert",
        spent_usd=float(spent),
        alert_usd=settings.budget_alert_usd,
        limit_usd=settings.monthly_budget_usd,
    )
    if not settings.budget_alert_webhook_url:
        return
    body = {
        "type": "budget.alert",
        "spent_usd": float(spent),
        "alert_usd": settings.budget_alert_usd,
        "limit_usd": settings.monthly_budget_usd,
    }
    try:
        httpx.post(
            settings.budget_alert_webhook_url,
            content=json.dumps(body),
            timeout=10,
            headers={"content-type": "application/json"},
        )
    except httpx.HTTPError as exc:  # the structlog error above is the alert of record
        log.warning("budget_alert_webhook_failed", error=str(exc))
