"""Tokens that are valid but unusual, through HTTP: they get a clear 4xx, never a 500."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

from loraflow.auth import issue_token
from tests.conftest import JWT_SECRET


def _token(claims_sub: str, role: str = "authenticated") -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": claims_sub, "role": role, "aud": "authenticated", "iat": now, "exp": now + 300},
        JWT_SECRET,
        algorithm="HS256",
    )


@pytest.mark.parametrize("spelling", ["urn", "braces", "upper"])
async def test_a_subject_in_another_uuid_spelling_is_the_same_user(
    http: httpx.AsyncClient, spelling: str
) -> None:
    user = uuid.uuid4()
    sub = {"urn": user.urn, "braces": "{" + str(user) + "}", "upper": str(user).upper()}[spelling]
    r = await http.post(
        "/api/v1/lora-models",
        json={"name": f"spelled {spelling}"},
        headers={"Authorization": f"Bearer {_token(sub)}"},
    )
    assert r.status_code == 201, r.text
    detail = await http.get(r.headers["location"], headers={"Authorization": f"Bearer {_token(str(user))}"})
    assert detail.json()["created_by"]["id"] == str(user)


@pytest.mark.parametrize("role", ["service_role", "anon"])
async def test_a_token_that_is_not_a_users_is_refused_by_the_user_routes(
    http: httpx.AsyncClient, role: str
) -> None:
    headers = {"Authorization": f"Bearer {issue_token(JWT_SECRET, user_id=str(uuid.uuid4()), role=role)}"}
    created = await http.post("/api/v1/lora-models", json={"name": "as the service"}, headers=headers)
    listed = await http.get("/api/v1/lora-models", headers=headers)
    assert (created.status_code, listed.status_code) == (403, 403)
    assert created.json()["error"]["code"] == "forbidden"
