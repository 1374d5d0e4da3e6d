"""Ratings through the HTTP API: the rules (completed only, never one's own, 1-5 stars, one per
user, changeable and removable), the exact aggregate under concurrent votes, and `top_rated`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
from psycopg_pool import AsyncConnectionPool

from loraflow.db import as_service
from tests.conftest import User
from tests.helpers.loras import mark_completed, new_lora


async def _completed_lora(pool: AsyncConnectionPool, name: str | None = None) -> tuple[str, str]:
    owner, lora_id = await new_lora(pool)
    await mark_completed(pool, lora_id, name)
    return owner, lora_id


async def test_rating_rules(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    _, lora_id = await _completed_lora(pool)
    alice, bob = make_user(), make_user()
    url = f"/api/v1/lora-models/{lora_id}/rating"

    r = await http.put(url, json={"stars": 4}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"stars": 4, "rating": {"mean": 4.0, "count": 1}}
    r = await http.put(url, json={"stars": 2}, headers=alice.headers)  # changed, not a second vote
    assert r.json()["rating"] == {"mean": 2.0, "count": 1}
    r = await http.put(url, json={"stars": 5}, headers=bob.headers)
    assert r.json()["rating"] == {"mean": 3.5, "count": 2}

    detail = (await http.get(f"/api/v1/lora-models/{lora_id}", headers=alice.headers)).json()
    assert detail["my_rating"] == 2 and detail["rating"] == {"mean": 3.5, "count": 2}
    assert (await http.delete(url, headers=alice.headers)).status_code == 204
    assert (await http.delete(url, headers=alice.headers)).status_code == 204  # nothing left: a no-op
    detail = (await http.get(f"/api/v1/lora-models/{lora_id}", headers=alice.headers)).json()
    assert detail["my_rating"] is None and detail["rating"] == {"mean": 5.0, "count": 1}

    for stars in (0, 6, "five"):
        assert (await http.put(url, json={"stars": stars}, headers=alice.headers)).status_code == 400
    assert (
        await http.put(url, json={"stars": 3, "user_id": bob.id}, headers=alice.headers)
    ).status_code == 400
    assert (await http.put(url, json={"stars": 3})).status_code == 401
    missing = f"/api/v1/lora-models/{uuid.uuid4()}/rating"
    assert (await http.put(missing, json={"stars": 3}, headers=alice.headers)).status_code == 404


async def test_no_rating_of_ones_own_or_an_unfinished_lora(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    creator = make_user()
    r = await http.post("/api/v1/lora-models", json={"name": "Mine"}, headers=creator.headers)
    assert r.status_code == 201, r.text
    pending = r.json()["lora_id"]
    r = await http.put(
        f"/api/v1/lora-models/{pending}/rating", json={"stars": 5}, headers=make_user().headers
    )
    assert r.status_code == 409 and "completed" in r.json()["error"]["message"]
    await mark_completed(pool, pending)
    r = await http.put(f"/api/v1/lora-models/{pending}/rating", json={"stars": 5}, headers=creator.headers)
    assert r.status_code == 403 and "own" in r.json()["error"]["message"]


async def test_concurrent_votes_are_all_counted(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    """Thirty users vote at once, then ten of them change their vote at once: the aggregate is
    exactly the sum of the votes that stand (the trigger adds each under the LoRA's row lock)."""
    _, lora_id = await _completed_lora(pool)
    url = f"/api/v1/lora-models/{lora_id}/rating"
    users = [make_user() for _ in range(30)]
    votes = {u.id: 1 + i % 5 for i, u in enumerate(users)}
    answers = await asyncio.gather(
        *[http.put(url, json={"stars": votes[u.id]}, headers=u.headers) for u in users]
    )
    assert {a.status_code for a in answers} == {200}
    for u in users[:10]:
        votes[u.id] = 5
    await asyncio.gather(*[http.put(url, json={"stars": 5}, headers=u.headers) for u in users[:10]])
    async with as_service(pool) as conn:
        row = await (
            await conn.execute(
                """SELECT m.rating_count, m.rating_sum, (SELECT count(*) FROM lora_ratings r
                    WHERE r.lora_model_id = m.id) AS rows FROM lora_models m WHERE m.id = %s""",
                [lora_id],
            )
        ).fetchone()
    assert (row["rating_count"], row["rating_sum"], row["rows"]) == (30, sum(votes.values()), 30)


async def test_top_rated_damps_a_single_vote(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    tag = uuid.uuid4().hex[:8]
    _, lone = await _completed_lora(pool, f"top-{tag}-lone")  # one 5-star vote
    _, steady = await _completed_lora(pool, f"top-{tag}-steady")  # ten 4-star votes
    await http.put(f"/api/v1/lora-models/{lone}/rating", json={"stars": 5}, headers=make_user().headers)
    await asyncio.gather(
        *[
            http.put(f"/api/v1/lora-models/{steady}/rating", json={"stars": 4}, headers=make_user().headers)
            for _ in range(10)
        ]
    )
    viewer = make_user()
    r = await http.get(
        "/api/v1/lora-models", params={"sort": "top_rated", "search": f"top-{tag}"}, headers=viewer.headers
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == [steady, lone]  # 4.0 x 10 beats 5.0 x 1
    assert items[0]["rating"] == {"mean": 4.0, "count": 10} and items[1]["rating"] == {
        "mean": 5.0,
        "count": 1,
    }
