"""/api/v1/budget: the month's training spend, for the service role (ops, dashboards)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CallerDep, PoolDep, SettingsDep
from api.errors import ApiError, responses
from loraflow.db import as_service, budget

router = APIRouter(prefix="/budget", tags=["operations"])


class BudgetStatus(BaseModel):
    month: str = Field(description="UTC calendar month, YYYY-MM.")
    spent_usd: float = Field(description="Sum of job_costs this month (trainings and keyframes).")
    limit_usd: float = Field(description="At this spend new trainings are refused (503).")
    alert_usd: float = Field(description="At this spend the alert fires (once a month).")
    refusing: bool = Field(description="Whether new trainings are being refused now.")


@router.get("", response_model=BudgetStatus, summary="This month's training spend (service role only)",
            responses=responses(401, 403))  # fmt: skip
async def get_budget(caller: CallerDep, pool: PoolDep, settings: SettingsDep) -> BudgetStatus:
    if caller.role != "service_role":
        raise ApiError(403, "forbidden", "the budget is visible to the service role only")
    async with as_service(pool) as conn:
        spent = await budget.month_spend(conn)
    return BudgetStatus.model_validate(budget.status_from(spent, settings), from_attributes=True)
