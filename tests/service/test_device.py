"""The serving device: CPU here; a required GPU that is missing stops start-up with the reason, instead of a
silent fall back to the CPU."""

from __future__ import annotations

import pytest

from service.device import CPU, DeviceUnavailableError, choose_device, faiss_gpus
from service.main import create_app
from tests.service.live_server import make_settings, serve


def test_cpu_and_auto_on_a_machine_without_gpu():
    assert choose_device("cpu").providers == (CPU,) and not choose_device("cpu").faiss_gpu
    auto = choose_device("auto")
    assert auto.providers[-1] == CPU and auto.faiss_gpu == (faiss_gpus() > 0)


@pytest.mark.skipif(faiss_gpus() > 0, reason="this machine has a GPU")
def test_a_required_gpu_that_is_missing_stops_start_up(tiny_bundle):
    with pytest.raises(DeviceUnavailableError, match="UNIHPR_DEVICE=gpu but .*missing"):
        choose_device("gpu")
    with pytest.raises(RuntimeError, match="failed to start"):
        with serve(create_app(make_settings(tiny_bundle, device="gpu"))):
            pass


def test_info_names_the_device(client):
    device = client.get("/info").json()["device"]
    assert device["onnx_providers"][-1] == CPU and isinstance(device["faiss_gpu"], bool)
