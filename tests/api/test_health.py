"""/healthz answers for the database and Temporal, and says which is down, but not why: the public
sees ok/degraded, never addresses or driver messages."""

from __future__ import annotations

import httpx
from httpx import ASGITransport

from api.app import create_app
from loraflow.settings import Settings


async def test_healthy_when_both_answer(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "database": {"ok": True},
        "temporal": {"ok": True},
    }


async def test_degraded_when_temporal_does_not_answer(settings: Settings) -> None:
    from loraflow.net import free_port

    app = create_app(settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"}))
    async with app.router.lifespan_context(app):
        app.state.temporal._timeout = 1.0
        async with httpx.AsyncClient(transport=ASGITransport(app), base_url="http://t") as client:
            r = await client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body == {"status": "degraded", "database": {"ok": True}, "temporal": {"ok": False}}
    assert settings.temporal_address.split(":")[0] not in r.text


async def test_a_create_while_temporal_is_down_is_503_without_its_address(settings: Settings) -> None:
    """The create fails honestly (503, the LoRA failed so its name is free again), and the answer
    names no internal address (it used to carry "Temporal at 127.0.0.1:… did not answer")."""
    import uuid

    from loraflow.auth import issue_token
    from loraflow.net import free_port

    address = f"127.0.0.1:{free_port()}"
    app = create_app(settings.model_copy(update={"temporal_address": address}))
    token = issue_token(settings.jwt_secret.get_secret_value(), user_id=str(uuid.uuid4()))
    async with app.router.lifespan_context(app):
        app.state.temporal._timeout = 1.0
        async with httpx.AsyncClient(
            transport=ASGITransport(app), base_url="http://t", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            r = await client.post("/api/v1/lora-models", json={"name": f"while down {uuid.uuid4()}"})
            mine = await client.get("/api/v1/lora-models", params={"creator": "me"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    assert address not in r.text and "127.0.0.1" not in r.text
    assert [item["training_status"] for item in mine.json()["items"]] == ["failed"]
