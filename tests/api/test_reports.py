"""Reports over HTTP: the reasons, one open report per user per LoRA, the hourly limit, and the
threshold that hides a LoRA from everyone but its creator (and from the clip planner)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from psycopg_pool import AsyncConnectionPool

from loraflow.db import as_service
from tests.api.test_admin import _queued
from tests.conftest import NEW_ACCOUNTS_COUNT, User
from tests.helpers.loras import mark_completed, new_lora


async def test_reporting_rules(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    _, lora_id = await new_lora(pool)
    reporter = make_user()
    url = f"/api/v1/lora-models/{lora_id}/reports"
    r = await http.post(
        url, json={"reason": "impersonation", "note": "it is my face"}, headers=reporter.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "open" and isinstance(r.json()["id"], int)
    r = await http.post(url, json={"reason": "spam"}, headers=reporter.headers)
    assert r.status_code == 409 and "open report" in r.json()["error"]["message"]
    for bad in (
        {"reason": "ugly"},
        {"reason": "other", "note": "x" * 1001},
        {"reason": "spam", "user_id": "x"},
    ):
        assert (await http.post(url, json=bad, headers=make_user().headers)).status_code == 400, bad
    missing = f"/api/v1/lora-models/{uuid.uuid4()}/reports"
    assert (await http.post(missing, json={"reason": "spam"}, headers=reporter.headers)).status_code == 404
    assert (await http.post(url, json={"reason": "spam"})).status_code == 401


async def test_ten_reports_an_hour_then_429(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    reporter = make_user()
    loras = [(await new_lora(pool))[1] for _ in range(11)]
    codes = [
        (
            await http.post(
                f"/api/v1/lora-models/{lora}/reports", json={"reason": "spam"}, headers=reporter.headers
            )
        ).status_code
        for lora in loras
    ]
    assert codes == [201] * 10 + [429]


async def test_reports_from_three_users_hide_a_lora_from_all_but_its_creator(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    creator = make_user()
    name = f"Reported {uuid.uuid4().hex[:8]}"
    r = await http.post("/api/v1/lora-models", json={"name": name}, headers=creator.headers)
    lora_id = r.json()["lora_id"]
    await mark_completed(pool, lora_id)
    viewer = make_user()

    async def listed(user: User, **params: str) -> int:
        r = await http.get("/api/v1/lora-models", params={"search": name, **params}, headers=user.headers)
        return r.json()["pagination"]["total"]

    same = make_user()
    for reporter in (same, same, make_user()):  # the same user twice counts once (and gets a 409)
        await http.post(
            f"/api/v1/lora-models/{lora_id}/reports", json={"reason": "hate"}, headers=reporter.headers
        )
    assert await listed(viewer) == 1  # two distinct users: still listed
    await http.post(
        f"/api/v1/lora-models/{lora_id}/reports", json={"reason": "hate"}, headers=make_user().headers
    )

    assert await listed(viewer) == 0
    assert (await http.get(f"/api/v1/lora-models/{lora_id}", headers=viewer.headers)).status_code == 404
    rated = await http.put(f"/api/v1/lora-models/{lora_id}/rating", json={"stars": 5}, headers=viewer.headers)
    assert rated.status_code == 404
    mine = (await http.get(f"/api/v1/lora-models/{lora_id}", headers=creator.headers)).json()
    assert mine["hidden_reason"] == "reported by several users; pending review"
    assert await listed(creator, creator="me") == 1 and await listed(creator) == 0
    async with as_service(pool) as conn:  # nothing was deleted
        row = await (
            await conn.execute("SELECT storage_path FROM lora_models WHERE id = %s", [lora_id])
        ).fetchone()
    assert row is not None and row["storage_path"]


async def test_only_established_accounts_reports_hide_a_lora(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    """With the production rule (accounts a day old, sql/0016), reports from accounts made a
    minute ago reach the admins' queue but hide nothing; once three reporters are established,
    the next report hides the LoRA."""
    creator, viewer, admin = make_user(), make_user(), make_user(admin=True)
    name = f"Brigaded {uuid.uuid4().hex[:8]}"
    lora_id = (await http.post("/api/v1/lora-models", json={"name": name}, headers=creator.headers)).json()[
        "lora_id"
    ]
    await mark_completed(pool, lora_id)

    async def listed() -> int:
        r = await http.get("/api/v1/lora-models", params={"search": name}, headers=viewer.headers)
        return r.json()["pagination"]["total"]

    async def report(user: User) -> None:
        r = await http.post(
            f"/api/v1/lora-models/{lora_id}/reports", json={"reason": "spam"}, headers=user.headers
        )
        assert r.status_code == 201, r.text

    async def set_min_age(value: str) -> None:
        async with as_service(pool) as conn:
            await conn.execute(
                "UPDATE loraflow_settings SET value = to_jsonb(%s::text)"
                " WHERE key = 'report_hide_min_account_age'",
                [value],
            )

    await set_min_age("1 day")
    try:
        fresh = [make_user() for _ in range(3)]
        for user in fresh:
            await report(user)
        assert await listed() == 1  # three accounts made a minute ago: still listed
        assert await _queued(http, admin, lora_id) is not None  # ...and in the admins' review
        async with as_service(pool) as conn:  # a day later
            await conn.execute(
                "UPDATE auth.users SET created_at = now() - interval '2 days' WHERE id = ANY(%s::uuid[])",
                [[u.id for u in fresh]],
            )
        await report(make_user())  # any new report recounts: three established reporters
        assert await listed() == 0
    finally:
        await set_min_age(NEW_ACCOUNTS_COUNT)
