"""The service never imports torch, the torch layer ``model.nn`` nor the builder: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_service_main_imports_without_torch():
    code = ("import sys, service.main, service.cli; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'index_builder') "
            "or m == 'model.nn' or m.startswith('model.nn.')); "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"imported: {result.stdout.strip()} {result.stderr[-2000:]}"
