"""The image installs through the same script CI runs, and the compose file is valid."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def stages(dockerfile: str) -> dict[str, str]:
    parts = re.split(r"^FROM .* AS (\w+)\s*$", dockerfile, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_docker_images_install_with_the_script_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)
    setup = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "scripts/install.sh" in setup
    images = stages((REPO / "Dockerfile").read_text())
    assert {"builder", "api"} <= set(images)
    for name in ("builder", "api"):
        assert re.search(r"^RUN scripts/install\.sh ", images[name], flags=re.MULTILINE), name
    # The API image has no torch: its install names no `build` extra and checks that torch is absent.
    api_install = re.search(r"^RUN scripts/install\.sh (.*)$", images["api"], flags=re.MULTILINE).group(1)
    assert "build" not in api_install and "find_spec('torch') is None" in images["api"]
    assert "download.pytorch.org/whl/cpu" in images["builder"]


def test_compose_file_is_valid():
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (.ci/run installs it)")
    for extra in ([], ["--profile", "gpu"]):
        result = subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), *extra, "config"],
                                capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 0, result.stderr
    config = result.stdout
    assert "service_completed_successfully" in config and "/readyz" in config
    assert "driver: nvidia" in config and "bundles:" in config
