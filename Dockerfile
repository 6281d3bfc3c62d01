# syntax=docker/dockerfile:1
# Two images from one file, both installed by scripts/install.sh (the script CI runs):
#   builder  offline CLI `unihpr-build` with CPU torch from the PyTorch CPU wheel index
#   api      the HTTP service: ONNX Runtime + FAISS + numpy, no torch
# GPU: --build-arg VARIANT=gpu installs faiss-gpu and onnxruntime-gpu instead of the CPU packages, on a CUDA
# runtime base (--build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 with Python 3.10+).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS source
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# CUDA base images come without Python; the default python image has it.
RUN command -v python3 >/dev/null || (apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*)
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY model ./model
COPY index_builder ./index_builder
COPY service ./service
COPY weights ./weights

FROM source AS builder
ARG VARIANT=cpu
ENV TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN scripts/install.sh /opt/venv "${VARIANT},build"
ENV PATH=/opt/venv/bin:$PATH UNIHPR_CACHE_DIR=/cache
ENTRYPOINT ["unihpr-build"]
CMD ["--help"]

FROM source AS api
ARG VARIANT=cpu
# the service's compiled loops (2D feature rows, re-ranking's fits, stored-vector reads) are compiled here, into
# numba's cache beside their source, not at every start
RUN scripts/install.sh /opt/venv "${VARIANT}" \
    && /opt/venv/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch in the API image'" \
    && /opt/venv/bin/python -c "from service.lifecycle import compile_service_kernels; compile_service_kernels()"
ENV PATH=/opt/venv/bin:$PATH UNIHPR_BUNDLE_PATH=/bundles/default
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["unihpr-serve", "--host", "0.0.0.0", "--port", "8000"]
