"""Review over HTTP: the admins' queue (reported and flagged LoRAs, oldest first, with their
reports), hide and restore with a reason, each decision in the audit log; 403 for everyone else
on every admin route."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from loraflow.db import as_service
from tests.conftest import User
from tests.helpers.loras import mark_completed
from tests.helpers.sql_roles import as_user

REPORTS = "/api/v1/admin/reports"


def _moderation(lora_id: str) -> str:
    return f"/api/v1/admin/lora-models/{lora_id}/moderation"


async def _completed(http: httpx.AsyncClient, pool: AsyncConnectionPool, creator: User, name: str) -> str:
    r = await http.post("/api/v1/lora-models", json={"name": name}, headers=creator.headers)
    assert r.status_code == 201, r.text
    await mark_completed(pool, r.json()["lora_id"])
    return str(r.json()["lora_id"])


async def _queued(http: httpx.AsyncClient, admin: User, lora_id: str) -> dict[str, Any] | None:
    """The LoRA's entry in the queue (paged through: the queue is the whole database's)."""
    offset = 0
    while True:
        r = await http.get(REPORTS, params={"limit": 100, "offset": offset}, headers=admin.headers)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        found = [i for i in items if i["lora"]["id"] == lora_id]
        if found or len(items) < 100:
            return found[0] if found else None
        offset += 100


async def _listed(http: httpx.AsyncClient, viewer: User, name: str) -> bool:
    r = await http.get("/api/v1/lora-models", params={"search": name}, headers=viewer.headers)
    return r.json()["pagination"]["total"] == 1


async def test_every_admin_route_refuses_users_and_strangers(
    http: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    routes = [
        (method.upper(), path.replace("{lora_id}", str(uuid.uuid4())))
        for path, methods in (await http.get("/openapi.json")).json()["paths"].items()
        if path.startswith("/api/v1/admin/")
        for method in methods
    ]
    assert {m for m, _ in routes} == {"GET", "POST"} and len(routes) == 2
    user = make_user()
    body = {"action": "hide", "reason": "because I can"}
    for method, path in routes:
        as_user_ = await http.request(method, path, json=body, headers=user.headers)
        assert as_user_.status_code == 403, (method, path, as_user_.text)
        assert as_user_.json()["error"]["code"] == "forbidden"
        assert (await http.request(method, path, json=body)).status_code == 401


async def test_the_queue_hide_restore_and_the_audit_trail(
    http: httpx.AsyncClient, make_user: Callable[..., User], pool: AsyncConnectionPool
) -> None:
    creator, viewer, admin = make_user(), make_user(), make_user(admin=True)
    tag = uuid.uuid4().hex[:8]
    reported = await _completed(http, pool, creator, f"review-{tag}-reported")
    unreported = await _completed(http, pool, creator, f"review-{tag}-unreported")
    flagged = await _completed(http, pool, creator, f"review-{tag}-flagged")

    reasons = ["impersonation", "copyright", "other"]
    for reason in reasons:
        r = await http.post(
            f"/api/v1/lora-models/{reported}/reports", json={"reason": reason}, headers=make_user().headers
        )
        assert r.status_code == 201, r.text
    async with as_service(pool) as conn:  # what automatic screening does to a flagged LoRA
        await conn.execute(
            "UPDATE lora_models SET hidden_at = now(), hidden_reason = 'automatic screening: x'"
            " WHERE id = %s",
            [flagged],
        )
    assert not await _listed(http, viewer, f"review-{tag}-reported")

    entry = await _queued(http, admin, reported)
    assert entry is not None
    assert [r["reason"] for r in entry["reports"]] == reasons  # oldest first
    assert entry["since"] == entry["reports"][0]["created_at"]
    assert entry["lora"]["hidden_reason"] == "reported by several users; pending review"
    screened = await _queued(http, admin, flagged)
    assert screened is not None and screened["reports"] == []
    assert await _queued(http, admin, unreported) is None

    # Restore: back in the library, its reports closed, out of the queue.
    r = await http.post(
        _moderation(reported), json={"action": "restore", "reason": "not upheld"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "restore" and r.json()["hidden"] is False
    restored_id = r.json()["decision_id"]
    assert await _listed(http, viewer, f"review-{tag}-reported")
    assert await _queued(http, admin, reported) is None

    # Hide: out of the library and others' reach; its creator sees why; an admin still sees it.
    r = await http.post(
        _moderation(unreported), json={"action": "hide", "reason": "  a known person's likeness  "},
        headers=admin.headers,
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["hidden"] is True
    assert not await _listed(http, viewer, f"review-{tag}-unreported")
    assert (await http.get(f"/api/v1/lora-models/{unreported}", headers=viewer.headers)).status_code == 404
    own = (await http.get(f"/api/v1/lora-models/{unreported}", headers=creator.headers)).json()
    assert own["hidden_reason"] == "a known person's likeness" and own["storage_path"]  # nothing deleted
    assert (await http.get(f"/api/v1/lora-models/{unreported}", headers=admin.headers)).status_code == 200
    assert await _queued(http, admin, unreported) is None  # decided

    async with as_user(
        pool, {"sub": admin.id, "role": "authenticated", "app_metadata": {"role": "admin"}}
    ) as conn:
        log = await (
            await conn.execute(
                """SELECT id, lora_model_id::text, admin_id::text, action, reason FROM lora_moderation_log
                    WHERE lora_model_id = ANY(%s::uuid[]) ORDER BY id""",
                [[reported, unreported]],
            )
        ).fetchall()
        closed = await (
            await conn.execute("SELECT count(*) FROM lora_reports WHERE resolved_by = %s", [restored_id])
        ).fetchone()
    assert [tuple(row.values()) for row in log] == [
        (restored_id, reported, admin.id, "restore", "not upheld"),
        (r.json()["decision_id"], unreported, admin.id, "hide", "a known person's likeness"),
    ]
    assert closed is not None and closed["count"] == 3


async def test_a_decision_needs_a_reason_and_a_lora(
    http: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    admin = make_user(admin=True)
    for bad in ({"action": "hide"}, {"action": "hide", "reason": "   "}, {"action": "delete", "reason": "x"}):
        r = await http.post(_moderation(str(uuid.uuid4())), json=bad, headers=admin.headers)
        assert r.status_code == 400, (bad, r.text)
    r = await http.post(
        _moderation(str(uuid.uuid4())), json={"action": "hide", "reason": "x"}, headers=admin.headers
    )
    assert r.status_code == 404
