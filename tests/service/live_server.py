"""Helpers of the service tests: a real uvicorn server on loopback (the httpx test-suite pattern), settings and
bundle copies.

``LiveServer`` is a uvicorn ``Server`` whose signal handling is off (signals only work on the main thread); it
runs in a thread on a socket bound to 127.0.0.1 port 0, so the port is free by construction. ``serve`` yields
once ``started`` is set and always sets ``should_exit`` and joins in ``finally``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uvicorn

from model.runtime.bundle_format import METADATA, file_entries, read_manifest, write_manifest
from service.config import Settings

READ_KEY, ADMIN_KEY = "read-key-1", "admin-key-1"
# the `client` fixture of each index backend in turn: FAISS in process, Milvus through a milvus-lite server
BOTH_BACKENDS = pytest.mark.parametrize("client", ["faiss", "milvus"], indirect=True)


class LiveServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # older uvicorn
        pass

    @contextlib.contextmanager
    def capture_signals(self):  # newer uvicorn
        yield

    @property
    def url(self) -> str:
        host, port = self.sockets_bound[0].getsockname()[:2]
        return f"http://{host}:{port}"


@contextlib.contextmanager
def serve(app, startup_timeout: float = 60.0):
    """Run ``app`` on 127.0.0.1:<free port> in a thread; yields the server (``server.url``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = LiveServer(config)
    server.sockets_bound = [sock]
    exit_codes: list[object] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit as err:  # uvicorn exits when the app's start-up fails
            exit_codes.append(err.code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the server failed to start (exit code {exit_codes})")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start")
            time.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def make_settings(bundle: Path, **overrides) -> Settings:
    """Settings for tests: one ORT thread (torch shares the process), explicit everything else."""
    values = {"bundle_path": bundle, "ort_threads": 1, "detector_instances": 2, "cors_origins": [], "api_keys": [],
              "admin_key": None}
    values.update(overrides)
    return Settings(**values)


def keyed_settings(bundle: Path) -> Settings:
    """Read and admin keys, CORS and small limits: the error tests' server."""
    return make_settings(bundle, api_keys=[READ_KEY, "read-key-2"], admin_key=ADMIN_KEY, max_body_bytes=256 * 1024,
                         max_batch=8, max_image_pixels=4_000_000, cors_origins=["https://app.example"])


def copy_bundle(source: Path, target: Path, version_suffix: str, clip_suffix: str = "") -> Path:
    """A copy of ``source`` with another model_version and (optionally) renamed clips, re-hashed properly."""
    shutil.copytree(source, target)
    manifest = read_manifest(target)
    files = dict(manifest.files)
    if clip_suffix:
        with np.load(target / METADATA) as data:
            metadata = {k: data[k] for k in data.files}
        metadata["clip_name"] = np.array([f"{name}{clip_suffix}" for name in metadata["clip_name"]])
        np.savez(target / METADATA, **metadata)
        files.update(file_entries(target, [METADATA]))
    manifest = manifest.model_copy(update={"files": files, "model_version": manifest.model_version + version_suffix})
    write_manifest(target, manifest)
    return target
