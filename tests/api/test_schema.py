"""The API against its own OpenAPI schema (schemathesis), bounded to stay quick.

Every operation gets generated requests, as an admin so that no route answers
only 401/403; the checks are the ones the contract asks for: never a 5xx,
every status and content type documented, every body matching its schema.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.world import World, api_world, raise_out_of_bed

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One seeded service for every operation (an open alert, homes, accounts), on its own loop."""
    loop = asyncio.new_event_loop()
    manager = api_world(Path(tempfile.mkdtemp(prefix="tecmon-schema-")))
    world = loop.run_until_complete(manager.__aenter__())
    loop.run_until_complete(raise_out_of_bed(world))
    world.service.mqtt_state["connected"] = True  # ready: /readyz answers 503 only while it is not
    yield world
    loop.run_until_complete(manager.__aexit__(None, None, None))
    loop.close()


def operations(world: World) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.service.app, headers=world.auth("root"))
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_has_documented_errors_and_examples(world: World) -> None:
    spec = world.service.app.openapi()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            if path not in ("/healthz", "/readyz"):
                assert "401" in codes or path.startswith("/ack/") or path == "/auth/token", (method, path)
            assert operation.get("summary"), (method, path)


def test_the_api_matches_its_schema(world: World) -> None:
    auth = world.auth("root")
    failures: list[str] = []
    for operation in operations(world):
        if operation.method.upper() == "DELETE" and operation.path == "/users/{name}":
            continue  # would remove the account the test signs in with

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers={**auth, **(case.headers or {})}, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
