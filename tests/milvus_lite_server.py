"""A real Milvus server for the tests: milvus-lite's gRPC server in a child process, bound to 127.0.0.1 only, on a
free port, with its data in a temporary directory; the tests reach it only through pymilvus and its URI, as they
would Milvus Standalone or Distributed. ``milvus_lite_server`` always stops it (SIGINT, then SIGKILL)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STARTUP_S = 60.0


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
    script = Path(sys.executable).with_name("milvus-lite")
    program = [str(script)] if script.exists() else [shutil.which("milvus-lite") or "milvus-lite"]
    return [*program, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]


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
            process = subprocess.Popen(server_command(data_dir, port), stdout=subprocess.DEVNULL, stderr=log)
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
