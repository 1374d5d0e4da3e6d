"""The training budget: the month's spend for the service role, a 503 with a clear message for
new trainings once it is spent, and the alert that fires once at the threshold."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import psycopg
import pytest

from loraflow.auth import issue_token
from loraflow.db import budget
from loraflow.settings import Settings
from tests.conftest import JWT_SECRET, User


@pytest.fixture
def spend(pg_dsn: str) -> Iterator[Callable[[float], None]]:
    """Bring this month's spend to at least a given figure; take it back afterwards (the
    other tests must not find the budget spent)."""
    added: list[str] = []

    def _to(target: float) -> None:
        with psycopg.connect(pg_dsn) as conn:
            spent = conn.execute("SELECT loraflow_month_spend()").fetchone()[0]
            missing = Decimal(str(target)) - spent
            if missing > 0:
                row_id = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO job_costs (id, service, cost) VALUES (%s, 'test', %s)", [row_id, missing]
                )
                added.append(row_id)

    yield _to
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("DELETE FROM job_costs WHERE id = ANY(%s::uuid[])", [added])
        conn.execute(
            "DELETE FROM budget_alerts WHERE month = date_trunc('month', now() AT TIME ZONE 'UTC')::date"
        )


def _service_headers() -> dict[str, str]:
    token = issue_token(JWT_SECRET, user_id=str(uuid.uuid4()), role="service_role")
    return {"Authorization": f"Bearer {token}"}


async def test_spent_budget_refuses_new_trainings_with_503(
    http: httpx.AsyncClient, make_user: Callable[[], User], spend: Callable[[float], None]
) -> None:
    user = make_user()
    pending = await http.post("/api/v1/lora-models", json={"name": "Before"}, headers=user.headers)
    assert pending.status_code == 201
    spend(200.0)
    r = await http.post("/api/v1/lora-models", json={"name": "After"}, headers=user.headers)
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert "training budget ($200.00) is spent" in error["message"] and "(UTC)" in error["message"]
    listed = await http.get("/api/v1/lora-models", params={"search": "After"}, headers=user.headers)
    assert listed.json()["pagination"]["total"] == 0  # nothing half-created

    status = await http.get("/api/v1/budget", headers=_service_headers())
    assert status.status_code == 200
    body = status.json()
    assert body["refusing"] is True and body["spent_usd"] >= 200 and body["limit_usd"] == 200
    assert (await http.get("/api/v1/budget", headers=user.headers)).status_code == 403


def test_alert_fires_once_a_month_at_the_threshold(
    pg_dsn: str, spend: Callable[[float], None], settings: Settings
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        spend(100.0)
        assert budget.alert_if_crossed(conn, settings) is False
        spend(150.0)
        assert budget.alert_if_crossed(conn, settings) is True
        assert budget.alert_if_crossed(conn, settings) is False  # once
        assert conn.execute("SELECT count(*) FROM budget_alerts").fetchone()[0] >= 1
