"""Bearer JWTs the way Supabase issues them: HS256 with the project secret, or keys from JWKS."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from loraflow.auth import TokenVerifier, issue_token
from loraflow.errors import AuthError
from tests.conftest import JWT_SECRET

ME = str(uuid.uuid4())


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": ME, "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600, **over}


async def _list(http: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await http.get("/api/v1/lora-models", headers=headers)


async def test_valid_token_is_accepted(http: httpx.AsyncClient) -> None:
    r = await _list(http, issue_token(JWT_SECRET, user_id=ME, email="me@example.com"))
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "missing bearer token"),
        ("not-a-jwt", "malformed token"),
        (jwt.encode(_claims(exp=int(time.time()) - 3600), JWT_SECRET, algorithm="HS256"), "expired"),
        (jwt.encode(_claims(), "some-other-secret-of-sufficient-length!!", algorithm="HS256"), "signature"),
        (jwt.encode(_claims(), None, algorithm="none"), "alg: none"),
        (jwt.encode(_claims(aud="anon"), JWT_SECRET, algorithm="HS256"), "audience"),
        (jwt.encode(_claims(sub="not-a-uuid"), JWT_SECRET, algorithm="HS256"), "sub"),
        (
            jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, JWT_SECRET, algorithm="HS256"),
            "exp",
        ),
        (jwt.encode(_claims(), JWT_SECRET, algorithm="HS512"), "HS512"),
    ],
    ids=[
        "missing",
        "malformed",
        "expired",
        "wrong-key",
        "alg-none",
        "audience",
        "bad-sub",
        "no-exp",
        "hs512",
    ],
)
async def test_unacceptable_tokens_are_401_with_a_reason(
    http: httpx.AsyncClient, token: str | None, message: str
) -> None:
    r = await _list(http, token)
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["code"] == "unauthorized"
    assert message in error["message"]
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[tuple[str, ec.EllipticCurvePrivateKey]]:
    """A JWKS endpoint on loopback, as Supabase serves at /auth/v1/.well-known/jwks.json."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    server.shutdown()


def test_asymmetric_tokens_verify_against_jwks(jwks_server: tuple[str, ec.EllipticCurvePrivateKey]) -> None:
    url, key = jwks_server
    verifier = TokenVerifier(secret=JWT_SECRET, audience="authenticated", jwks_url=url)
    token = jwt.encode(_claims(email="e@example.com"), key, algorithm="ES256", headers={"kid": "k1"})
    caller = verifier.verify(token)
    assert caller.user_id == ME and caller.email == "e@example.com"

    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(AuthError, match="signature"):
        verifier.verify(forged)


def test_asymmetric_tokens_without_jwks_are_refused(
    jwks_server: tuple[str, ec.EllipticCurvePrivateKey],
) -> None:
    _, key = jwks_server
    verifier = TokenVerifier(secret=JWT_SECRET, audience="authenticated")
    with pytest.raises(AuthError, match="ES256"):
        verifier.verify(jwt.encode(_claims(), key, algorithm="ES256", headers={"kid": "k1"}))
