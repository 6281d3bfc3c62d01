"""The read routes dispatched without FastAPI's router (``service.read_dispatch``): which requests it answers, and
that its answers, headers and errors are FastAPI's, byte for byte."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import numpy as np
import orjson
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import iter_route_contexts

from service import read_dispatch
from service.deps import EmbedRead
from service.main import create_app
from service.read_dispatch import ReadDispatch, read_route
from tests.service.live_server import READ_KEY, keyed_settings, make_settings, serve

RNG = np.random.default_rng(7)
KEYPOINTS = RNG.uniform(300, 700, (4, 17, 2))


def pose2d(i: int, **extra) -> dict:
    return {"modality": "pose2d", "keypoints": KEYPOINTS[i].tolist(), "layout": "h36m17", **extra}


def with_gaps() -> dict:
    keypoints = np.concatenate([KEYPOINTS[1], RNG.uniform(0.2, 1, (17, 1))], 1).tolist()
    keypoints[3], keypoints[5][2] = None, 0.0
    return {"keypoints": keypoints}


REQUESTS = [  # (path, body): answers and errors of every read route
    ("/embed", {"inputs": [pose2d(0)]}),
    ("/embed", {"inputs": [pose2d(i) for i in range(4)]}),
    ("/embed", {"inputs": [pose2d(0, image_size=[1000, 800]), with_gaps(),
                           pose2d(2, camera={"focal": [900, 900], "principal_point": [480, 520]})]}),
    ("/embed", {"inputs": [{"modality": "pose3d", "keypoints": RNG.normal(0, 300, (17, 3)).tolist()}]}),
    ("/retrieve", {"query": pose2d(0), "k": 5}),
    ("/retrieve", {"query": pose2d(1, image_size=[1000, 1000]), "k": 3, "align_to_query": True,
                   "include_pose3d": True}),
    ("/retrieve", {"queries": [pose2d(i) for i in range(3)], "k": 4, "group_by_clip": True, "rerank": False}),
    ("/lift3d", pose2d(3, image_size=[1000, 1000])),
    ("/lift3d", {"inputs": [pose2d(0), pose2d(1)]}),
    ("/embed", b"not json"),
    ("/embed", b""),
    ("/embed", {"inputs": []}),
    ("/embed", {"inputs": [pose2d(0, colour="red")]}),
    ("/embed", {"inputs": [{"keypoints": KEYPOINTS[0, :16].tolist()}]}),
    ("/embed", b'{"inputs": [{"keypoints": [[NaN, 1]]}]}'),
    ("/retrieve", {"query": pose2d(0), "k": 0}),
    ("/retrieve", {"query": pose2d(0), "k": 10**6}),
    ("/lift3d", {"inputs": "no"}),
]


def comparable(r: httpx.Response) -> tuple:
    """Status, body, headers but the date, and Server-Timing's stage names without their durations."""
    timing = [stage.split(";")[0] for stage in r.headers.get("server-timing", "").split(", ")]
    headers = sorted((k, v) for k, v in r.headers.items() if k not in ("server-timing", "date"))
    return r.status_code, r.content, headers, timing


@contextmanager
def client_of(settings):
    """A client of a live server of a new app."""
    with serve(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


def answers(settings, headers: dict) -> list[tuple]:
    """``comparable`` answers of a live server of a new app to every request in REQUESTS, also under /v1, and to
    a request with the wrong content type, with no key and with a wrong key."""
    out = []
    with client_of(settings) as client:
        for path, body in REQUESTS:
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            for prefix in ("", "/v1"):
                r = client.post(prefix + path, content=content,
                                headers={"Content-Type": "application/json", "X-Request-ID": "fixed", **headers})
                out.append((prefix + path, *comparable(r)))
        for name, extra in (("text/plain", {"Content-Type": "text/plain"}), ("no key", {"X-API-Key": ""}),
                            ("wrong key", {"X-API-Key": "wrong"})):
            r = client.post("/embed", content=orjson.dumps({"inputs": [pose2d(0)]}),
                            headers={**headers, "X-Request-ID": "fixed", **extra})
            out.append((name, *comparable(r)))
    return out


@pytest.fixture()
def dispatched(monkeypatch) -> list[dict]:
    """The scopes of the requests ``ReadDispatch`` answers itself, as they are once answered."""
    scopes = []
    answer = ReadDispatch._answer

    async def recorded(target, scope, receive, send):
        await answer(target, scope, receive, send)
        scopes.append(scope)

    monkeypatch.setattr(ReadDispatch, "_answer", staticmethod(recorded))
    return scopes


def paths(scopes: list[dict]) -> list[str]:
    return [scope["path"] for scope in scopes]


@pytest.mark.parametrize("keyed", [False, True])
def test_dispatched_answers_are_fastapis(tiny_bundle, keyed, dispatched, monkeypatch):
    settings = keyed_settings(tiny_bundle) if keyed else make_settings(tiny_bundle)
    headers = {"X-API-Key": READ_KEY} if keyed else {}
    fast = answers(settings, headers)
    assert len(dispatched) == 2 * len(REQUESTS) + 3
    assert {status for _, status, *_ in fast} >= {200, 400, 415, 422, *([401] if keyed else [])}
    monkeypatch.setattr(ReadDispatch, "_routes_of", lambda self, app: {})
    routed = answers(settings, headers)
    assert len(dispatched) == 2 * len(REQUESTS) + 3  # none of these went through the dispatch
    for mine, theirs in zip(fast, routed, strict=True):
        assert mine == theirs, mine[0]


def test_the_key_is_checked_before_the_body_when_dispatched(tiny_bundle, dispatched):
    with client_of(keyed_settings(tiny_bundle)) as client:
        r = client.post("/retrieve", content=b"not json", headers={"X-API-Key": "", "Content-Type": "application/json"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
        r = client.post("/retrieve", content=b"not json", headers={"X-API-Key": "wrong"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert paths(dispatched) == ["/retrieve", "/retrieve"]


def test_only_the_read_routes_post_requests_without_a_query_are_dispatched(tiny_bundle, dispatched):
    with client_of(make_settings(tiny_bundle)) as client:
        body = {"query": pose2d(0), "k": 3}
        assert client.post("/retrieve?layout=unihpr17", json=body).json()["layout"] == "unihpr17"
        assert client.post("/retrieve?layuot=x", json=body).json()["error"]["field"] == "layuot"
        assert client.get("/embed").status_code == 405
        assert client.get("/healthz").status_code == 200
        assert not dispatched
        assert client.post("/retrieve", json=body).json()["layout"] == "h36m17"  # the query's default
        (scope,) = dispatched  # with what FastAPI's router would have set
        assert scope["path"] == "/retrieve"
        assert scope["router"] is scope["app"].router and scope["path_params"] == {}
        assert scope["route"].path == "/retrieve" and scope["endpoint"] is scope["route"].endpoint
        metrics = client.get("/metrics").text
    assert 'endpoint="/retrieve",method="POST",status="200"' in metrics  # labelled as FastAPI's route would be


def test_the_dispatch_steps_aside_while_fastapi_records_telemetry(tiny_bundle, dispatched, monkeypatch):
    monkeypatch.setattr(read_dispatch, "get_telemetry_data", lambda: object())
    with client_of(make_settings(tiny_bundle)) as client:
        assert client.post("/embed", json={"inputs": [pose2d(0)]}).status_code == 200
    assert not dispatched


def test_routes_with_more_than_a_read_dependency_or_other_answers_are_left_to_fastapi():
    app = FastAPI()

    async def endpoint(request: Request, read: EmbedRead, layout: str = "h36m17") -> Response: ...

    async def other(request: Request, read: EmbedRead, key: str) -> Response: ...

    async def serialised(request: Request, read: EmbedRead) -> dict: ...

    router = APIRouter()
    router.add_api_route("/plain", endpoint, methods=["POST"])
    router.add_api_route("/limited", endpoint, methods=["POST"], max_body_size=1024)
    router.add_api_route("/required-query", other, methods=["POST"])
    router.add_api_route("/get", endpoint, methods=["GET"])
    router.add_api_route("/serialised", serialised, methods=["POST"])
    app.include_router(router)
    app.include_router(router, prefix="/guarded", dependencies=[Depends(lambda: None)])
    found = {context.path: read_route(context) for context in iter_route_contexts(app.routes)}
    assert [path for path, target in found.items() if target is not None] == ["/plain"]


def test_the_dispatched_routes_are_the_read_routes(tiny_bundle):
    app = create_app(keyed_settings(tiny_bundle))
    routes = {context.path: read_route(context) for context in iter_route_contexts(app.routes)}
    dispatched = sorted(path for path, target in routes.items() if target is not None)
    assert dispatched == ["/embed", "/lift3d", "/retrieve", "/v1/embed", "/v1/lift3d", "/v1/retrieve"]
    assert routes["/retrieve"].defaults == {"layout": "h36m17"} and routes["/embed"].defaults == {}
    assert routes["/v1/embed"].route is routes["/embed"].route
