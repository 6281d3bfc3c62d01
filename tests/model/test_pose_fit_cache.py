"""The compiled fits where numba cannot keep its cache (a read-only installation): they compile in memory instead of
failing the import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_fits_work_where_numba_finds_no_place_for_its_cache():
    code = ("import numba.core.caching as caching, numpy as np; "
            "caching.CacheImpl._locator_classes = []; "  # as on a read-only file system: no writable location
            "from model.pose.pose_fit import perspective_fit; "
            "rng = np.random.default_rng(0); poses = rng.normal(0, 300, (3, 17, 3)); "
            "rays = poses[..., :2] / (poses[..., 2:] + 4000.0); "
            "fit = perspective_fit(rays, np.ones((3, 17)), poses, rounds=30, iterations=2); "
            "print(float(fit.residual.max()))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip()) < 1e-9
