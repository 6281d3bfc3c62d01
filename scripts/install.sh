#!/usr/bin/env bash
# Install unihpr into a virtual environment. The Makefile, CI and the Dockerfile all install through this script.
#   scripts/install.sh [VENV] [EXTRAS]
# VENV defaults to .venv; EXTRAS defaults to cpu,build,test. Exactly one of `cpu` and `gpu` belongs in EXTRAS
# (faiss-gpu / onnxruntime-gpu provide the same modules as faiss-cpu / onnxruntime). With `build`, CPU torch is
# installed first from the pinned wheel: an unpinned torch would pull a multi-GB CUDA build. TORCH_INDEX_URL
# (the Docker builder sets the PyTorch CPU wheel index) says where that wheel comes from.
set -euo pipefail
venv="${1:-.venv}"
extras="${2:-cpu,build,test}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
case ",$extras," in
  *,build,*) "$venv/bin/python" -m pip install --quiet ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
               "torch==2.13.0" ;;
esac
"$venv/bin/python" -m pip install --quiet -e ".[$extras]"
