"""What already held when the red team attacked, kept as regressions through the doors it used:
HTTP and SQL as a Supabase client (``authenticated`` with JWT claims). Token forgeries are in
``test_auth.py``, cross-user writes in ``test_sql_surface.py`` and ``tests/sql/test_schema.py``."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Callable

import httpx
import psycopg
import pytest
from PIL import Image
from psycopg_pool import AsyncConnectionPool

from tests.conftest import User
from tests.helpers.loras import character_png, new_lora
from tests.helpers.sql_roles import as_user, user_claims


async def test_a_client_cannot_delete_a_lora_not_even_its_own(pool: AsyncConnectionPool) -> None:
    """The library is permanent: no DELETE or TRUNCATE for a client, on its own LoRA either."""
    owner, lora_id = await new_lora(pool)
    for attack in ("DELETE FROM lora_models WHERE id = %s", "TRUNCATE lora_models CASCADE"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with as_user(pool, user_claims(owner)) as conn:
                await conn.execute(attack, [lora_id] if "%s" in attack else None)
    async with pool.connection() as conn:
        assert await (await conn.execute("SELECT 1 FROM lora_models WHERE id = %s", [lora_id])).fetchone()


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    """A 20000x20000 PNG of a few KB (400 MP: 1.2 GB once decoded) is refused by its header."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")
    assert len(out.getvalue()) < 200_000
    files = [("images", (f"{i}.png", character_png(i), "image/png")) for i in range(3)]
    files.append(("images", ("bomb.png", out.getvalue(), "image/png")))
    user = make_user()
    r = await http.post("/api/v1/lora-models", data={"name": "bomb"}, files=files, headers=user.headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_image" and "bomb.png" in r.json()["error"]["message"]
    mine = await http.get("/api/v1/lora-models", params={"creator": "me"}, headers=user.headers)
    assert mine.json()["items"] == []  # nothing created


async def test_twenty_concurrent_creates_yield_exactly_five_201s(
    http: httpx.AsyncClient, make_user: Callable[[], User]
) -> None:
    user = make_user()
    responses = await asyncio.gather(
        *[
            http.post("/api/v1/lora-models", json={"name": f"racer {i}"}, headers=user.headers)
            for i in range(20)
        ]
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 5, 429: 15}, codes
    limited = next(r for r in responses if r.status_code == 429).json()["error"]
    assert limited["code"] == "monthly_limit_reached" and "5" in limited["message"]
    listed = (
        await http.get("/api/v1/lora-models", params={"search": "racer", "limit": 100}, headers=user.headers)
    ).json()
    assert sum(1 for i in listed["items"] if i["created_by"]["id"] == user.id) == 5
