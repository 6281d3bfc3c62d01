"""Fixtures of the service tests: session-scoped live servers over the tiny bundle, clients, the bundle's arrays."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from model.runtime.bundle_format import METADATA
from service.main import create_app
from tests.service.live_server import READ_KEY, keyed_settings, make_settings, serve


@pytest.fixture(scope="session")
def server(tiny_bundle):
    """An open server (no keys) over the tiny bundle."""
    with serve(create_app(make_settings(tiny_bundle))) as live:
        yield live


@pytest.fixture(scope="session")
def keyed_server(tiny_bundle):
    """A server with read and admin keys, CORS, and small limits, for the error tests."""
    with serve(create_app(keyed_settings(tiny_bundle))) as live:
        yield live


@pytest.fixture(scope="session")
def milvus_server(milvus_bundle, milvus_uri):
    """An open server over the tiny bundle's Milvus copy (same poses, metadata and vectors), searching Milvus.
    milvus-lite is a single Python process: right after the collection is written it can take longer than the
    5 s default deadline to accept a connection on a busy CI machine, hence a longer one here."""
    settings = make_settings(milvus_bundle, index_backend="milvus", milvus_uri=milvus_uri, milvus_timeout_s=30.0)
    with serve(create_app(settings)) as live:
        yield live


@pytest.fixture()
def client(request):
    """A client of the open server; of the Milvus-backed one for tests marked ``BOTH_BACKENDS`` (param
    "milvus")."""
    backend = getattr(request, "param", "faiss")
    live = request.getfixturevalue("server" if backend == "faiss" else "milvus_server")
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


@pytest.fixture()
def keyed_client(keyed_server):
    with httpx.Client(base_url=keyed_server.url, timeout=60, headers={"X-API-Key": READ_KEY}) as c:
        yield c


@pytest.fixture(scope="session")
def database(tiny_bundle):
    """The tiny bundle's arrays as the tests read them: poses (N, 17, 3) mm world, rotations, metadata."""
    poses = np.load(tiny_bundle / "poses.npy")
    rotations = np.load(tiny_bundle / "view_rotations.npy")
    with np.load(tiny_bundle / METADATA) as data:
        metadata = {k: data[k] for k in data.files}
    return poses, rotations, metadata
