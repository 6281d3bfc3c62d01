"""Prometheus metrics of one app, in its own ``CollectorRegistry`` (several apps can live in one process).

unihpr_requests_total{endpoint, method, status}            requests answered
unihpr_request_duration_seconds{endpoint, method, status}  latency histogram
unihpr_request_items{endpoint}                              inputs / queries per request
unihpr_microbatch_rows{graph}, unihpr_microbatch_requests{graph}   size of each merged ONNX call
unihpr_index_vectors, unihpr_index_poses                    size of the served index
unihpr_bundle_info{model_version, index_type}               1 for the served bundle
unihpr_bundle_reloads_total{outcome}                        reloads accepted / refused
"""

from __future__ import annotations

from collections.abc import Hashable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("unihpr_requests", "Requests answered", ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("unihpr_request_duration_seconds", "Request latency", ["endpoint", "method", "status"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.items = Histogram("unihpr_request_items", "Inputs or queries per request", ["endpoint"],
                               buckets=SIZE_BUCKETS, registry=r)
        self.batch_rows = Histogram("unihpr_microbatch_rows", "Rows per merged ONNX call", ["graph"],
                                    buckets=SIZE_BUCKETS, registry=r)
        self.batch_requests = Histogram("unihpr_microbatch_requests", "Requests per merged ONNX call", ["graph"],
                                        buckets=SIZE_BUCKETS, registry=r)
        self.index_vectors = Gauge("unihpr_index_vectors", "Vectors in the served index", registry=r)
        self.index_poses = Gauge("unihpr_index_poses", "Poses in the served index", registry=r)
        self.bundle = Gauge("unihpr_bundle_info", "The served bundle (value 1)", ["model_version", "index_type"],
                            registry=r)
        self.reloads = Counter("unihpr_bundle_reloads", "Bundle reloads", ["outcome"], registry=r)
        # the labelled series each observation updates, by its labels: ``labels()`` costs a few microseconds a
        # call (it checks and joins the label values under a lock), several times per request
        self._series: dict[Hashable, tuple] = {}

    def _children(self, key: Hashable, metrics: tuple, labels: tuple[str, ...]) -> tuple:
        children = self._series.get(key)
        if children is None:
            children = self._series[key] = tuple(metric.labels(*labels) for metric in metrics)
        return children

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        count, latency = self._children(("request", endpoint, method, status), (self.requests, self.latency),
                                        (endpoint, method, str(status)))
        count.inc()
        latency.observe(seconds)

    def observe_items(self, endpoint: str, count: int) -> None:
        self._children(("items", endpoint), (self.items,), (endpoint,))[0].observe(count)

    def observe_microbatch(self, graph: str, rows: int, requests: int) -> None:
        batch_rows, batch_requests = self._children(("microbatch", graph), (self.batch_rows, self.batch_requests),
                                                    (graph,))
        batch_rows.observe(rows)
        batch_requests.observe(requests)

    def set_bundle(self, model_version: str, index_type: str, vectors: int, poses: int) -> None:
        self.bundle.clear()
        self.bundle.labels(model_version, index_type).set(1)
        self.index_vectors.set(vectors)
        self.index_poses.set(poses)

    def render(self) -> bytes:
        return generate_latest(self.registry)
