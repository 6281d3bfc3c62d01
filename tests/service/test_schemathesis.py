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

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402  (after the importorskip above)

from service.main import create_app  # noqa: E402
from tests.service.live_server import READ_KEY, make_settings  # noqa: E402

MAX_EXAMPLES = 25
REQUEST_TIMEOUT_S = 60


def schema_config():
    """Schemathesis settings: every check, valid and invalid data, MAX_EXAMPLES cases, deterministic."""
    return schemathesis.Config.from_dict({
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"enabled": True},
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": REQUEST_TIMEOUT_S,
    })


# The document the live servers serve: routes and schemas do not depend on the bundle or the keys, and creating
# the app loads nothing (the bundle loads in the lifespan). Loaded at import because schemathesis' lazy
# ``from_fixture`` schemas do not work with this pytest (it sets ``Function._nodeid``).
SCHEMA = schemathesis.openapi.from_dict(create_app(make_settings(Path("unused-bundle"))).openapi(),
                                        config=schema_config())
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))


@SCHEMA.parametrize()
@BOUNDED
def test_open_service_conforms_to_its_openapi(case, server):
    case.call_and_validate(base_url=server.url)


@SCHEMA.parametrize()
@BOUNDED
def test_keyed_service_conforms_to_its_openapi(case, keyed_server):
    case.call_and_validate(base_url=keyed_server.url, headers={"X-API-Key": READ_KEY})
