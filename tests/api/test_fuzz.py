"""Schema-driven fuzzing: whatever schemathesis sends, the API never answers 5xx and every
response matches the documented OpenAPI schema (including the error shape)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import User


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_request_gets_a_500(api_url: str, make_user: Callable[[], User], mode: str) -> None:
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    user = make_user()
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    seen = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=generation))
        @hypothesis.settings(
            max_examples=100,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            headers = dict(case.headers or {})
            headers.setdefault("Authorization", f"Bearer {user.token}")
            response = case.call(base_url=api_url, headers=headers)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            # No invalid input exists for an operation that takes none (GET /healthz).
            assert mode == "negative" and not operation.path.startswith("/api/"), operation.label
            continue
        seen += 1
    assert seen >= 4  # every /api/v1 route was exercised


def _string_fields(openapi: dict) -> list[tuple[str, str, str, str]]:
    """(method, path, "query"|"body", name) for every string parameter the schema documents."""
    fields = []
    components = openapi.get("components", {}).get("schemas", {})
    for path, item in openapi["paths"].items():
        if "{" in path:
            continue
        for method, op in item.items():
            for p in op.get("parameters", []):
                schema = p.get("schema", {})
                kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
                if p["in"] == "query" and "string" in kinds and "enum" not in schema:
                    fields.append((method, path, "query", p["name"]))
            ref = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref")
            )
            if ref:
                props = components[ref.rsplit("/", 1)[1]].get("properties", {})
                fields += [(method, path, "body", name) for name in props]
    return fields


def test_arbitrary_unicode_in_every_string_field_is_never_a_500(
    api_url: str, make_user: Callable[[], User]
) -> None:
    openapi = httpx.get(f"{api_url}/openapi.json").json()
    fields = _string_fields(openapi)
    assert {f[3] for f in fields} >= {"search", "name", "description"}
    user = make_user()
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {user.token}"}) as client:
        for field in fields:
            _fuzz_field(client, *field)


def _fuzz_field(client: httpx.Client, method: str, path: str, where: str, name: str) -> None:
    from hypothesis import strategies as st

    @given(value=st.text(max_size=300))
    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True, database=None)
    def check(value: str) -> None:
        if where == "query":
            r = client.request(method, path, params={name: value})
        else:
            body = {"name": "fuzz"} if name != "name" else {}
            r = client.request(method, path, json={**body, name: value})
        assert r.status_code < 500, (name, value, r.text)
        assert "error" in r.json() or r.status_code < 300

    check()
