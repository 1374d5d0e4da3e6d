"""The list's discovery filters over HTTP: creator (an id or `me`), creation time, model family
and minimum rating, each combined with the rest and counted in the page's total."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from psycopg_pool import AsyncConnectionPool

from tests.conftest import User
from tests.helpers.loras import mark_completed


async def _create(http: httpx.AsyncClient, user: User, name: str) -> dict:
    r = await http.post("/api/v1/lora-models", json={"name": name}, headers=user.headers)
    assert r.status_code == 201, r.text
    return (await http.get(f"/api/v1/lora-models/{r.json()['lora_id']}", headers=user.headers)).json()


async def _ids(http: httpx.AsyncClient, user: User, **params: object) -> tuple[list[str], int]:
    r = await http.get("/api/v1/lora-models", params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]], r.json()["pagination"]["total"]


async def test_creator_time_and_family_filters(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    alice, bob = make_user(), make_user()
    first = await _create(http, alice, "Discovery one")
    second = await _create(http, alice, "Discovery two")
    theirs = await _create(http, bob, "Discovery three")

    assert await _ids(http, alice, creator="me") == ([second["id"], first["id"]], 2)
    assert await _ids(http, alice, creator=bob.id) == ([theirs["id"]], 1)
    assert await _ids(http, alice, creator="me", created_after=first["created_at"]) == ([second["id"]], 1)
    assert await _ids(http, alice, creator="me", created_before=second["created_at"]) == ([first["id"]], 1)
    assert await _ids(http, alice, creator="me", base_model="sdxl") == ([second["id"], first["id"]], 2)
    assert await _ids(http, alice, creator="me", base_model="flux") == ([], 0)
    for bad in ({"creator": "someone"}, {"created_after": "yesterday"}, {"min_rating": 6}):
        r = await http.get("/api/v1/lora-models", params=bad, headers=alice.headers)
        assert r.status_code == 400, (bad, r.text)


async def test_min_rating_keeps_the_well_rated(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    creator, voter = make_user(), make_user()
    tag = uuid.uuid4().hex[:8]
    good = await _create(http, creator, f"rated-{tag}-good")
    poor = await _create(http, creator, f"rated-{tag}-poor")
    await _create(http, creator, f"rated-{tag}-unrated")
    for lora, stars in ((good, 5), (poor, 2)):
        await mark_completed(pool, lora["id"])
        r = await http.put(
            f"/api/v1/lora-models/{lora['id']}/rating", json={"stars": stars}, headers=voter.headers
        )
        assert r.status_code == 200, r.text
    assert await _ids(http, voter, search=f"rated-{tag}", min_rating=4) == ([good["id"]], 1)
    ids, total = await _ids(http, voter, search=f"rated-{tag}", min_rating=1)
    assert sorted(ids) == sorted([good["id"], poor["id"]]) and total == 2  # unrated: out
