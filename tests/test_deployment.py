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


def compose_config(*profiles: str) -> str:
    extra = [arg for p in profiles for arg in ("--profile", p)]
    result = subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), *extra, "config"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_file_is_valid():
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (.ci/run installs it)")
    compose_config()
    config = compose_config("gpu")
    assert "service_completed_successfully" in config and "/readyz" in config
    assert "driver: nvidia" in config and "bundles:" in config


def test_compose_scale_and_milvus_profiles():
    """Replicas without host ports behind nginx (so `--scale` works), Milvus Standalone with etcd and MinIO at
    pinned versions with health checks, and the Milvus API replicas depending on them and ready on /readyz."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (.ci/run installs it)")
    yaml = pytest.importorskip("yaml")
    services = yaml.safe_load(compose_config("scale", "milvus"))["services"]
    for name in ("api-replica", "api-milvus"):
        assert "ports" not in services[name], f"{name} publishes a host port: --scale would clash"
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
    assert services["proxy"]["environment"]["UPSTREAM"] == "api-replica:8000"
    assert services["proxy-milvus"]["environment"]["UPSTREAM"] == "api-milvus:8000"
    for name in ("etcd", "minio", "milvus", "proxy", "proxy-milvus"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image} is not pinned"
    for name in ("etcd", "minio", "milvus"):
        assert services[name]["healthcheck"]["test"], name
    assert services["milvus"]["depends_on"] == {"etcd": {"condition": "service_healthy"},
                                                "minio": {"condition": "service_healthy"}}
    api = services["api-milvus"]
    assert api["environment"]["UNIHPR_INDEX_BACKEND"] == "milvus"
    assert api["environment"]["UNIHPR_MILVUS_URI"] == "http://milvus:19530"
    assert api["depends_on"]["milvus"] == {"condition": "service_healthy"}
    assert "--backend milvus" in " ".join(services["builder-milvus"]["command"])
    template = (REPO / "deploy" / "nginx.conf.template").read_text()
    assert "resolver 127.0.0.11" in template and "${UPSTREAM}" in template
