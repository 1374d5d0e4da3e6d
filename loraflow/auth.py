"""Verifying Supabase-compatible JWTs: HS256 with the project secret, or keys from a JWKS URL."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

import jwt
from jwt import PyJWKClient

from loraflow.db import Caller
from loraflow.errors import AuthError

#: Asymmetric algorithms accepted from a JWKS; "none" and HMAC with a public key never are.
_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
#: Tokens verified lately, by their exact text: a client sends the same token with every request,
#: and verifying it again (signature, claims) was a tenth of a list request's time in the API.
_VERIFIED_CACHE_SIZE = 4096
_LEEWAY_S = 10


class TokenVerifier:
    def __init__(self, *, secret: str, audience: str, jwks_url: str | None = None) -> None:
        self._secret = secret
        self._audience = audience
        self._jwks = PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None
        self._verified: OrderedDict[str, tuple[float, Caller]] = OrderedDict()
        self._lock = threading.Lock()  # verify runs on the event loop and, for JWKS, in threads

    def may_fetch_keys(self, token: str) -> bool:
        """Whether verifying ``token`` may fetch the JWKS over HTTP (an asymmetric token with a
        JWKS configured); HS256 tokens verify in microseconds, with no I/O."""
        if self._jwks is None:
            return False
        try:
            return jwt.get_unverified_header(token).get("alg") in _ASYMMETRIC
        except jwt.PyJWTError:
            return False

    def verify(self, token: str) -> Caller:
        """The token's caller, or ``AuthError``. A token verified before is taken from the cache
        until its ``exp`` (the same leeway as a fresh check)."""
        with self._lock:
            cached = self._verified.get(token)
            if cached is not None and time.time() < cached[0]:
                self._verified.move_to_end(token)
                return cached[1]
        caller = self._verify(token)
        with self._lock:
            self._verified[token] = (float(caller.claims["exp"]) + _LEEWAY_S, caller)
            if len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return caller

    def _verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("malformed token") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthError("unsigned tokens (alg: none) are not accepted")
        try:
            if alg == "HS256":
                key: Any = self._secret
                algorithms = ["HS256"]
            elif alg in _ASYMMETRIC and self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = [alg]
            else:
                raise AuthError(f"tokens signed with {alg} are not accepted")
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                options={"require": ["exp", "sub"]},
                leeway=_LEEWAY_S,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(f"token audience is not '{self._audience}'") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("token signature is invalid") from exc
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"no key to verify this token: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc

        try:
            user_id = str(uuid.UUID(str(claims["sub"])))
        except ValueError as exc:
            raise AuthError("token subject (sub) is not a user id") from exc
        email, role = claims.get("email"), claims.get("role")
        email = email if isinstance(email, str) else None
        role = role if isinstance(role, str) else "authenticated"
        # One spelling of the subject from here on (the database's auth.uid() casts it):
        # "urn:uuid:…", braces or upper case would otherwise fail there.
        claims = {**claims, "sub": user_id}
        return Caller(user_id=user_id, email=email, role=role, claims=claims)


def issue_token(
    secret: str,
    *,
    user_id: str,
    email: str | None = None,
    audience: str = "authenticated",
    ttl_seconds: int = 24 * 3600,
    role: str = "authenticated",
    app_metadata: dict[str, Any] | None = None,
) -> str:
    """An HS256 token shaped like Supabase Auth's, for local use and tests (``app_metadata``:
    what Supabase's service sets on a user, e.g. ``{"role": "admin"}``)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(uuid.UUID(user_id)),
        "aud": audience,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": "loraflow-local",
    }
    if email:
        claims["email"] = email
    if app_metadata is not None:
        claims["app_metadata"] = app_metadata
    return jwt.encode(claims, secret, algorithm="HS256")


_DEV_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
_DEV_USERS = uuid.UUID("6f1d2c8e-3b8a-4c55-9a3e-6c2f8e1d0a77")


def dev_identity(user: str) -> tuple[str, str]:
    """``(user_id, email)`` of a development user (the dev stack's sign-in link, the demo): a
    UUID as given, or a short name such as ``demo``, which is always the same user."""
    try:
        user_id = str(uuid.UUID(user))
        return user_id, f"dev+{user_id[:8]}@loraflow.local"
    except ValueError:
        pass
    name = user.strip().lower()
    if not _DEV_NAME.match(name):
        raise ValueError("a development user is a UUID or a short name (a-z, 0-9, '.', '_', '-')")
    return str(uuid.uuid5(_DEV_USERS, name)), f"{name}@loraflow.local"
