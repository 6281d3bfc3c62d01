"""A new user's first command: clone the repository, `make serve`, and use every endpoint.

Slow by nature (a fresh virtual environment and the default bundle are built inside the clone), so it runs once,
against what is committed: the test clones HEAD, not the working tree.
"""

import base64
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmarks.service_harness import free_port, wait_until_ready

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "pose-images" / "mpii" / "052475643.jpg"
READY_TIMEOUT_S = 900.0  # a fresh virtual environment and the default bundle are built first


@pytest.fixture(scope="module")
def served_clone(tmp_path_factory):
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed to act as a new user")
    clone = tmp_path_factory.mktemp("newuser") / "unihpr"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    port = free_port()
    log = open(clone.parent / "serve.log", "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNIHPR_", "VIRTUAL_ENV"))}
    proc = subprocess.Popen(["make", "serve", f"PORT={port}"], cwd=clone, stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    try:
        try:
            wait_until_ready(proc, url, READY_TIMEOUT_S,
                             exit_detail=lambda: f":\n{(clone.parent / 'serve.log').read_text()[-3000:]}")
        except RuntimeError as err:
            pytest.fail(f"make serve: {err}")
        except TimeoutError:
            pytest.fail("the service did not become ready within 15 minutes")
        print(f"\nfresh clone: make serve ready after {time.monotonic() - start:.0f} s")
        yield url, clone
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_every_endpoint_of_the_fresh_clone(served_clone):
    url, clone = served_clone
    assert (clone / "bundles" / "default" / "manifest.json").is_file()
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        info = client.get("/info").json()
        assert "CC BY-NC 4.0" in str(info)
        lift = client.post("/lift3d", json={"keypoints": [[500 + 10 * j, 200 + 25 * j] for j in range(17)],
                                            "layout": "h36m17", "image_size": [1000, 1000]})
        pose3d = np.array(lift.json()["pose3d"])
        assert pose3d.shape == (17, 3) and np.allclose(pose3d[0], 0)
        embed = client.post("/embed", json={"inputs": [{"modality": "pose3d", "keypoints": pose3d.tolist()}]})
        assert embed.status_code == 200 and embed.headers["X-Model-Version"]
        vector = np.array(embed.json()["embeddings"][0])
        assert abs(np.linalg.norm(vector) - 1) < 1e-4
        found = client.post("/retrieve", json={"query": {"embedding": vector.tolist()}, "k": 5}).json()
        assert len(found["results"]) == 5 and "licence" in str(found).lower()
        assert "unihpr" in client.get("/metrics").text
        if PHOTO.is_file():
            image = base64.b64encode(PHOTO.read_bytes()).decode()
            lifted = client.post("/lift3d", json={"image_b64": image})
            assert lifted.status_code == 200, lifted.text
            assert np.array(lifted.json()["pose3d"]).shape == (17, 3)
