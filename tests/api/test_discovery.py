"""The list's discovery filters and sorts over HTTP: creator (an id or `me`), creation time, model
family and minimum rating, each combined with the rest and counted in the page's total;
`trending`; the page PostgreSQL builds, and its ETag."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from api.schemas import LoraDetail, LoraList, LoraSummary
from loraflow.contracts.maintenance import RefreshTrendingInput
from loraflow.db import as_service
from loraflow.settings import Settings
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


async def _use(pool: AsyncConnectionPool, lora_id: str, clips: int, days_ago: int) -> None:
    """``clips`` uses of the LoRA, counted the way the clip planner counts one
    (loraflow.domain.clips), then dated ``days_ago``."""
    async with as_service(pool) as conn:
        for _ in range(clips):
            await conn.execute(
                "INSERT INTO lora_usages (lora_model_id, clip_id, mode) VALUES (%s, %s, 'direct')",
                [lora_id, uuid.uuid4().hex],
            )
            await conn.execute(
                "UPDATE lora_models SET usage_count = usage_count + 1, uses_30d = uses_30d + 1 WHERE id = %s",
                [lora_id],
            )
        await conn.execute(
            "UPDATE lora_usages SET created_at = now() - make_interval(days => %s) WHERE lora_model_id = %s",
            [days_ago, lora_id],
        )


async def test_trending_ranks_by_the_last_30_days_of_use(
    http: httpx.AsyncClient,
    make_user: Callable[[], User],
    pool: AsyncConnectionPool,
    worker: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    """Uses count at once; the hourly recount takes off those older than 30 days, so a LoRA
    used a lot long ago falls below one used a little lately (`popular` still ranks it first)."""
    creator, viewer = make_user(), make_user()
    tag = uuid.uuid4().hex[:8]
    lately, long_ago, never = [await _create(http, creator, f"trend-{tag}-{n}") for n in "abc"]
    for lora in (lately, long_ago, never):
        await mark_completed(pool, lora["id"])
    await _use(pool, long_ago["id"], clips=5, days_ago=40)
    await _use(pool, lately["id"], clips=2, days_ago=1)
    assert (await _ids(http, viewer, search=f"trend-{tag}", sort="trending"))[0] == [
        long_ago["id"], lately["id"], never["id"],
    ]  # fmt: skip

    await temporal_env.client.execute_workflow(
        "RefreshTrendingWorkflow", RefreshTrendingInput(), id=f"trending-test-{tag}",
        task_queue=worker.task_queue, result_type=int,
    )  # fmt: skip
    r = await http.get(
        "/api/v1/lora-models", params={"search": f"trend-{tag}", "sort": "trending"}, headers=viewer.headers
    )
    items = r.json()["items"]
    assert [(i["id"], i["uses_30d"], i["usage_count"]) for i in items] == [
        (lately["id"], 2, 2), (never["id"], 0, 0), (long_ago["id"], 0, 5),  # ties: newest first
    ]  # fmt: skip
    assert (await _ids(http, viewer, search=f"trend-{tag}", sort="popular"))[0][0] == long_ago["id"]


async def test_a_page_is_the_documented_shape_with_a_strong_etag(
    http: httpx.AsyncClient, make_user: Callable[[], User], pool: AsyncConnectionPool
) -> None:
    """PostgreSQL builds the page: it must read exactly as the schema and the detail (built by
    Python) say; the caller's own rating is in it; If-None-Match gets a 304 until it changes."""
    creator, voter = make_user(), make_user()
    tag = uuid.uuid4().hex[:8]
    lora = await _create(http, creator, f"etag-{tag}")
    await mark_completed(pool, lora["id"])
    await http.put(f"/api/v1/lora-models/{lora['id']}/rating", json={"stars": 4}, headers=voter.headers)
    page = {"search": f"etag-{tag}"}

    r = await http.get("/api/v1/lora-models", params=page, headers=voter.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    listed = LoraList.model_validate_json(r.content)
    detail = LoraDetail.model_validate(
        (await http.get(f"/api/v1/lora-models/{lora['id']}", headers=voter.headers)).json()
    )
    assert listed.pagination.model_dump() == {"total": 1, "limit": 50, "offset": 0}
    assert set(r.json()["items"][0]) == set(LoraSummary.model_fields)
    assert listed.items[0] == LoraSummary.model_validate(
        detail.model_dump(include=set(LoraSummary.model_fields))
    )
    assert listed.items[0].my_rating == 4 and listed.items[0].rating.model_dump() == {"mean": 4.0, "count": 1}

    etag = r.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    same = await http.get(
        "/api/v1/lora-models", params=page, headers={**voter.headers, "If-None-Match": etag}
    )
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    await http.put(f"/api/v1/lora-models/{lora['id']}/rating", json={"stars": 2}, headers=voter.headers)
    changed = await http.get(
        "/api/v1/lora-models", params=page, headers={**voter.headers, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["items"][0]["my_rating"] == 2
    other = await http.get("/api/v1/lora-models", params=page, headers=creator.headers)
    assert other.json()["items"][0]["my_rating"] is None  # each caller's own
