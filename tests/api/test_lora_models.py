"""/api/v1/lora-models over real HTTP against the API process."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import User


async def _create(http: httpx.AsyncClient, user: User, name: str, description: str | None = None) -> str:
    r = await http.post(
        "/api/v1/lora-models", json={"name": name, "description": description}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    return r.json()["lora_id"]


async def test_create_returns_pending_lora_and_trims_name(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    user = make_user()
    r = await http.post("/api/v1/lora-models", json={"name": "  Cyberpunk Girl  "}, headers=user.headers)
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "pending" and body["message"]
    assert r.headers["location"] == f"/api/v1/lora-models/{body['lora_id']}"
    detail = (await http.get(f"/api/v1/lora-models/{body['lora_id']}", headers=user.headers)).json()
    assert detail["name"] == "Cyberpunk Girl"
    assert detail["created_by"] == {"id": user.id, "email": user.email}
    assert detail["training_status"] == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "body.name"),
        ({"name": "    "}, "body.name"),
        ({"name": "x" * 256}, "body.name"),
        ({"name": "bad\u0000name"}, "body.name"),
        ({"name": "tab\tname"}, "body.name"),
        ({"name": 42}, "body.name"),
        ({}, "body.name"),
        ({"name": "ok", "surprise": 1}, "body.surprise"),
    ],
)
async def test_invalid_names_are_400_with_the_field(
    http: httpx.AsyncClient, make_user: Callable[[], User], body: dict[str, object], field: str
) -> None:
    r = await http.post("/api/v1/lora-models", json=body, headers=make_user().headers)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in [d["field"] for d in error["details"]]


async def test_255_characters_is_allowed(http: httpx.AsyncClient, make_user: Callable[[], User]) -> None:
    r = await http.post("/api/v1/lora-models", json={"name": "é" * 255}, headers=make_user().headers)
    assert r.status_code == 201


async def test_malformed_json_is_400(http: httpx.AsyncClient, make_user: Callable[[], User]) -> None:
    r = await http.post(
        "/api/v1/lora-models",
        content=b"{not json",
        headers={**make_user().headers, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"


async def test_duplicate_name_is_409_but_other_users_may_reuse_it(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    alice, bob = make_user(), make_user()
    await _create(http, alice, "Knight")
    r = await http.post("/api/v1/lora-models", json={"name": "Knight"}, headers=alice.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "duplicate_name"
    await _create(http, bob, "Knight")


async def test_concurrent_creates_of_one_name_yield_one_201(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    user = make_user()
    responses = await asyncio.gather(
        *[http.post("/api/v1/lora-models", json={"name": "Twin"}, headers=user.headers) for _ in range(8)]
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 7}


async def test_get_unknown_and_malformed_ids(http: httpx.AsyncClient, make_user: Callable[[], User]) -> None:
    user = make_user()
    r = await http.get(f"/api/v1/lora-models/{uuid.uuid4()}", headers=user.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await http.get("/api/v1/lora-models/not-a-uuid", headers=user.headers)
    assert r.status_code == 400
    r = await http.get(f"/api/v1/lora-models/{uuid.uuid4()}/status", headers=user.headers)
    assert r.status_code == 404


async def test_status_of_a_new_lora(http: httpx.AsyncClient, make_user: Callable[[], User]) -> None:
    user = make_user()
    lora_id = await _create(http, user, "Status check")
    r = await http.get(f"/api/v1/lora-models/{lora_id}/status", headers=make_user().headers)
    assert r.status_code == 200
    body = r.json()
    assert body["training_status"] == "pending" and body["progress"] == 0
    assert body["estimated_remaining"] is None


async def test_pagination_search_filter_and_sort(
    http: httpx.AsyncClient, make_user: Callable[[], User], pg_dsn: str
) -> None:
    import psycopg

    tag = uuid.uuid4().hex[:10]  # scopes this test's rows within the shared library
    alice, bob = make_user(), make_user()
    ids = {}
    for user, name, desc in [
        (alice, f"{tag} Zed", "a grumpy wizard"),
        (alice, f"{tag} Amy", "cheerful knight"),
        (alice, f"{tag} Mia", None),
        (bob, f"{tag} Bo", "another WIZARD, shouting"),
        (bob, f"{tag} Cat_100%", "literal wildcards"),
    ]:
        ids[name.split(" ", 1)[1]] = await _create(http, user, name, desc)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for name, uses in [("Zed", 3), ("Amy", 10), ("Bo", 7)]:
            conn.execute("UPDATE lora_models SET usage_count = %s WHERE id = %s", [uses, ids[name]])
        conn.execute(
            "UPDATE lora_models SET training_status = 'completed', storage_path = 'p', "
            "storage_url = 'u', file_size = 1 WHERE id = %s",
            [ids["Mia"]],
        )

    async def names(**params: object) -> tuple[list[str], int]:
        r = await http.get("/api/v1/lora-models", params={"search": tag, **params}, headers=alice.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        return [i["name"].split(" ", 1)[1] for i in body["items"]], body["pagination"]["total"]

    assert await names(sort="name") == (["Amy", "Bo", "Cat_100%", "Mia", "Zed"], 5)
    popular, _ = await names(sort="popular")
    assert popular[:3] == ["Amy", "Bo", "Zed"]
    recent, _ = await names(sort="recent")
    assert recent == ["Cat_100%", "Bo", "Mia", "Amy", "Zed"]
    assert await names(sort="name", limit=2, offset=1) == (["Bo", "Cat_100%"], 5)
    assert await names(status="completed") == (["Mia"], 1)
    r = await http.get(
        "/api/v1/lora-models", params={"search": f"{tag} wizard", "sort": "name"}, headers=alice.headers
    )
    assert r.json()["pagination"]["total"] == 0  # the search is a substring of "name description"
    wizards = await http.get(
        "/api/v1/lora-models", params={"search": "WiZaRd", "limit": 100}, headers=alice.headers
    )
    assert {ids["Zed"], ids["Bo"]} <= {i["id"] for i in wizards.json()["items"]}
    # % and _ are literal characters, not wildcards.
    assert await names(search=f"{tag} Cat_100%") == (["Cat_100%"], 1)
    assert (await names(search=f"{tag} C%t"))[1] == 0
    first = (await http.get("/api/v1/lora-models", params={"search": tag}, headers=bob.headers)).json()[
        "items"
    ][0]
    assert set(first["created_by"]) == {"id", "email"}


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "done"}, {"sort": "random"}, {"limit": "ten"}],
)
async def test_bad_list_parameters_are_400(
    http: httpx.AsyncClient, make_user: Callable[[], User], params: dict[str, object]
) -> None:
    r = await http.get("/api/v1/lora-models", params=params, headers=make_user().headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"


async def test_default_page_size_is_50(http: httpx.AsyncClient, make_user: Callable[[], User]) -> None:
    r = await http.get("/api/v1/lora-models", headers=make_user().headers)
    assert r.json()["pagination"]["limit"] == 50


async def test_detail_shows_only_the_public_training_parameters(
    http: httpx.AsyncClient, make_user: Callable[[], User], pg_dsn: str
) -> None:
    """The dataset (image keys, whether it started, a job's slot and character) and a preset's
    internals are the service's business: a LoRA's page shows the parameters a user chooses."""
    import psycopg

    from tests.helpers.loras import character_png

    owner, stranger = make_user(), make_user()
    r = await http.post(
        "/api/v1/lora-models",
        json={"name": "Public params", "training_params": {"trigger_word": "pubp", "seed": 7}},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    lora_id = r.json()["lora_id"]
    files = [("images", (f"{i}.png", character_png(i), "image/png")) for i in range(2)]
    r = await http.post(f"/api/v1/lora-models/{lora_id}/images", files=files, headers=owner.headers)
    assert r.status_code == 200 and r.json()["images"] == 2, r.text

    for viewer in (owner, stranger):
        detail = (await http.get(f"/api/v1/lora-models/{lora_id}", headers=viewer.headers)).json()
        params = detail["training_params"]
        assert set(params) == {
            "steps",
            "rank",
            "alpha",
            "learning_rate",
            "resolution",
            "trigger_word",
            "seed",
        }
        assert (params["trigger_word"], params["seed"]) == ("pubp", 7)
    with psycopg.connect(pg_dsn) as conn:
        stored, keys, started = conn.execute(
            """SELECT m.training_params, d.image_keys, d.started_at
                 FROM lora_models m JOIN lora_datasets d ON d.lora_model_id = m.id WHERE m.id = %s""",
            [lora_id],
        ).fetchone()
    # The dataset lives in its own table; training_params holds training parameters only.
    assert not {"image_keys", "started", "job_slot", "character_id"} & set(stored)
    assert [k.rsplit("/", 2)[1:] for k in keys] == [["uploaded", "0.png"], ["uploaded", "1.png"]]
    assert started is None
