"""A real Milvus server for the tests: milvus-lite's gRPC server in a child process, bound to 127.0.0.1 only, on a
free port, with its data in a temporary directory; the tests reach it only through pymilvus and its URI, as they
would Milvus Standalone or Distributed. ``milvus_lite_server`` always stops it (SIGINT, then SIGKILL).

Run as ``python -m tests.milvus_lite_server DATA_DIR PORT`` it is the server itself: milvus-lite's servicer on a gRPC
server that accepts the keepalive pings pymilvus sends (every 10 s, also between calls), as Milvus itself does.
milvus-lite's own ``server`` command keeps gRPC's defaults (one ping per 5 minutes without calls, two strikes), so
after about two idle minutes it closes the test process's connections with GOAWAY "too_many_pings"; a call or a
new connection made at that moment failed three CI runs."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

STARTUP_S = 60.0
REPOSITORY = Path(__file__).resolve().parents[1]
MESSAGE_BYTES = 256 << 20  # Milvus's own gRPC limit (grpc.serverMaxRecvSize); gRPC's default, 4 MiB, refuses a
# full insert batch (index_builder.bundle.milvus_collection.INSERT_ROWS of 128-D vectors: 4.7 MB)
SERVER_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),  # 0: never close a connection for its pings
    ("grpc.max_receive_message_length", MESSAGE_BYTES),
    ("grpc.max_send_message_length", MESSAGE_BYTES),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(uri: str) -> bool:
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    try:
        MilvusClient(uri=uri, timeout=1.0).close()
        return True
    except MilvusException:
        return False


def server_command(data_dir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "tests.milvus_lite_server", str(data_dir), str(port)]


def run_server(data_dir: str, port: int) -> None:
    """Serves milvus-lite on 127.0.0.1:port until SIGINT, then closes its data directory."""
    import grpc
    from milvus_lite.adapter.grpc.servicer import MilvusServicer
    from milvus_lite.db import MilvusLite
    from pymilvus.grpc_gen import milvus_pb2_grpc

    db = MilvusLite(data_dir)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), options=SERVER_OPTIONS)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=5)
        db.close()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # milvus-lite drains and closes its data directory
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def milvus_lite_server(data_dir: Path):
    """Yields (uri, process) of a milvus-lite server on 127.0.0.1."""
    # Its log goes to a file: an unread pipe fills after some 64 KiB of log lines and then blocks the server,
    # which stops answering mid-session.
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    for _ in range(3):  # the free port may be taken between probing it and the server binding it
        port = _free_port()
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                server_command(data_dir, port), cwd=REPOSITORY, stdout=subprocess.DEVNULL, stderr=log
            )
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_S
        try:
            while process.poll() is None and time.monotonic() < deadline and not _answers(uri):
                time.sleep(0.2)
            if process.poll() is None and _answers(uri):
                try:
                    yield uri, process
                finally:
                    stop(process)
                return
        except BaseException:
            stop(process)
            raise
        stop(process)
    raise RuntimeError(f"milvus-lite did not start: {log_path.read_text()[-2000:]}")


if __name__ == "__main__":
    run_server(sys.argv[1], int(sys.argv[2]))
