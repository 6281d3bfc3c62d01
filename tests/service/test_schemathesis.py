"""Property-based conformance of the live service to its own OpenAPI document (schemathesis, every check).

Schemathesis loads ``/openapi.json`` from a real loopback server over the tiny bundle and, for every operation,
sends the schema's examples, its coverage cases and fuzzed requests (valid and invalid data), then runs all of its
built-in checks on each answer: no 5xx, documented status codes, content types, headers and response schemas,
invalid data rejected, valid data accepted, missing required headers, unsupported methods, and the rest. It runs
twice: against the open server (no keys) and against the keyed server with a read key (small limits, keys on),
where /admin and the limits answer 401/403/413.

Bounded: at most ``MAX_EXAMPLES`` fuzzed cases per operation and phase, deterministic generation (same cases every
run), no deadline, no stateful phase, a per-request timeout.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402  (after the importorskip above)

from tests.service.live_server import READ_KEY  # noqa: E402

MAX_EXAMPLES = 25
REQUEST_TIMEOUT_S = 60


def schema_config(headers: dict[str, str] | None = None):
    """Schemathesis settings: every check, valid and invalid data, MAX_EXAMPLES cases, deterministic."""
    return schemathesis.Config.from_dict({
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"enabled": True},
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": REQUEST_TIMEOUT_S,
        "headers": headers or {},
    })


@pytest.fixture(scope="module")
def open_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=schema_config())


@pytest.fixture(scope="module")
def keyed_schema(keyed_server):
    return schemathesis.openapi.from_url(f"{keyed_server.url}/openapi.json",
                                         config=schema_config({"X-API-Key": READ_KEY}))


OPEN = schemathesis.pytest.from_fixture("open_schema")
KEYED = schemathesis.pytest.from_fixture("keyed_schema")
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))


@OPEN.parametrize()
@BOUNDED
def test_open_service_conforms_to_its_openapi(case):
    case.call_and_validate()


@KEYED.parametrize()
@BOUNDED
def test_keyed_service_conforms_to_its_openapi(case):
    case.call_and_validate(headers={"X-API-Key": READ_KEY})
