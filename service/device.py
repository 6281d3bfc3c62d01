"""Which device serves: ONNX Runtime's execution providers and FAISS's GPUs, decided once at start-up.

``UNIHPR_DEVICE``: ``cpu`` uses the CPU only; ``gpu`` requires ONNX Runtime's CUDA provider and a FAISS GPU and
refuses to start without them (a GPU image whose CUDA libraries do not match would otherwise fall back to the CPU
without a word); ``auto`` uses them when present. The choice is logged at start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import faiss
import onnxruntime as ort

LOG = logging.getLogger(__name__)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class DeviceUnavailableError(RuntimeError):
    """``UNIHPR_DEVICE=gpu`` on a machine or install without a usable GPU."""


@dataclass(frozen=True)
class Device:
    """providers: for ONNX Runtime sessions, in order of preference; faiss_gpu: search unfiltered on a GPU copy."""

    providers: tuple[str, ...]
    faiss_gpu: bool

    @property
    def onnx_on_gpu(self) -> bool:
        return self.providers[0] == CUDA


def faiss_gpus() -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


def choose_device(wanted: str) -> Device:
    """The device for ``wanted`` (cpu, gpu or auto); DeviceUnavailableError when gpu is wanted and missing."""
    available = ort.get_available_providers()
    gpus = faiss_gpus()
    LOG.info("ONNX Runtime %s providers %s; FAISS %s with %d GPU(s); UNIHPR_DEVICE=%s", ort.__version__, available,
             faiss.__version__, gpus, wanted)
    if wanted == "cpu":
        return Device((CPU,), False)
    missing = [what for what, ok in (("ONNX Runtime's CUDA provider", CUDA in available),
                                     ("a FAISS GPU", gpus > 0)) if not ok]
    if wanted == "gpu" and missing:
        raise DeviceUnavailableError(
            f"UNIHPR_DEVICE=gpu but {' and '.join(missing)} missing (providers {available}, FAISS GPUs {gpus}): "
            "install the gpu extra (faiss-gpu, onnxruntime-gpu built for the image's CUDA major) on a machine "
            "with an NVIDIA GPU, or set UNIHPR_DEVICE=cpu")
    return Device((CUDA, CPU) if CUDA in available else (CPU,), gpus > 0)
