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
from tests.service.live_server import READ_KEY, keyed_settings, make_settings  # noqa: E402

MAX_EXAMPLES = 25
REQUEST_TIMEOUT_S = 60


def schema_config():
    """Schemathesis settings: every check, valid and invalid data, MAX_EXAMPLES cases, deterministic.

    Schema-valid data may still be refused for what no schema says: a photo without a person, a pose with too
    few visible joints, an image format by its bytes (422 / 415 with the field named), or a per-request total
    such as k x queries over max_results (413 naming the limit); and the keyed run sends a read key everywhere,
    which /admin refuses (403). Those answers count as accepted handling of valid data; 5xx, 400 and the rest
    still fail the check. Invalid data may be refused as 413 (a limit checked before
    the items) besides 400 / 422.
    """
    return schemathesis.Config.from_dict({
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"enabled": True,
                   "positive_data_acceptance": {"expected-statuses": ["2XX", "401", "403", "404", "413", "415",
                                                                     "422"]},
                   "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "413", "415",
                                                                     "422"]}},
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": REQUEST_TIMEOUT_S,
    })


def document(settings) -> object:
    """The document an app with ``settings`` serves (it states that configuration's keys and limits). Creating the
    app loads nothing (the bundle loads in the lifespan). Loaded at import because schemathesis' lazy
    ``from_fixture`` schemas do not work with this pytest (it sets ``Function._nodeid``)."""
    return schemathesis.openapi.from_dict(create_app(settings).openapi(), config=schema_config())


OPEN_SCHEMA = document(make_settings(Path("unused-bundle")))
KEYED_SCHEMA = document(keyed_settings(Path("unused-bundle")))
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))


@OPEN_SCHEMA.parametrize()
@BOUNDED
def test_open_service_conforms_to_its_openapi(case, server):
    case.call_and_validate(base_url=server.url)


@KEYED_SCHEMA.parametrize()
@BOUNDED
def test_keyed_service_conforms_to_its_openapi(case, keyed_server):
    case.call_and_validate(base_url=keyed_server.url, headers={"X-API-Key": READ_KEY})
