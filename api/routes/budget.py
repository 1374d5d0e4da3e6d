"""/api/v1/budget: the month's training spend, for the service role (ops, dashboards)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AnyCallerDep, PoolDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import BudgetStatusPublic
from loraflow.db import as_service, budget
from loraflow.domain.budget import budget_status

router = APIRouter(prefix="/budget", tags=["operations"])


@router.get("", response_model=BudgetStatusPublic, summary="This month's training spend (service role only)",
            responses=responses(401, 403))  # fmt: skip
async def get_budget(caller: AnyCallerDep, pool: PoolDep, settings: SettingsDep) -> BudgetStatusPublic:
    if caller.role != "service_role":
        raise ApiError(403, "forbidden", "the budget is visible to the service role only")
    async with as_service(pool) as conn:
        spent = await budget.month_spend(conn)
    return BudgetStatusPublic.model_validate(budget_status(spent, settings), from_attributes=True)
