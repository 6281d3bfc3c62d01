"""Start-up, shutdown and hot reload of the served bundle.

The app serves the bundle in ``app.state.bundle``. Loading happens in a worker thread; installing a bundle is a
single reference assignment, so every request sees either the old or the new bundle, whole. Requests take their
bundle once (``service.deps.served_bundle``) and finish on it even if a reload swaps it meanwhile. Reloads are
serialised by a lock; a bundle that fails verification is refused and the old one keeps serving.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
import faiss
from fastapi import FastAPI
from PIL import Image

from model.bundle_format import BundleError
from service.artifacts import Bundle, load_bundle
from service.errors import ArtifactMismatchError, BundleRejectedError

LOG = logging.getLogger(__name__)


def install(app: FastAPI, bundle: Bundle) -> None:
    """Serve ``bundle`` from now on (one reference swap) and update the metrics."""
    app.state.bundle = bundle
    app.state.metrics.set_bundle(bundle.model_version, bundle.index.kind, bundle.index.ntotal, bundle.index.poses)


async def load(app: FastAPI, path: Path) -> Bundle:
    settings, metrics = app.state.settings, app.state.metrics
    return await anyio.to_thread.run_sync(load_bundle, path, settings, metrics.observe_microbatch)


async def reload(app: FastAPI, path: Path | None) -> tuple[Bundle, str | None]:
    """Load, verify and install the bundle at ``path`` (default: the configured one).

    returns: the new bundle and the previous model version. Raises BundleRejectedError, leaving the served
    bundle as it was, when the new one fails.
    """
    path = Path(path) if path is not None else app.state.settings.bundle_path
    async with app.state.reload_lock:
        previous = app.state.bundle
        try:
            bundle = await load(app, path)
        except BundleError as err:
            app.state.metrics.reloads.labels("refused").inc()
            LOG.warning("reload refused, still serving %s: %s",
                        previous.model_version if previous else "nothing", err)
            raise BundleRejectedError(f"bundle refused: {err}", "bundle") from err
        install(app, bundle)
        app.state.metrics.reloads.labels("accepted").inc()
        LOG.info("now serving %s (was %s)", bundle.model_version, previous.model_version if previous else None)
        return bundle, previous.model_version if previous else None


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Process-wide settings, then the configured bundle (fail fast unless ``require_bundle`` is off)."""
    settings = app.state.settings
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels  # Pillow's own bomb check at the service's limit
    # Pillow warns between 1x and 2x its limit; service.images refuses those images itself (413), so the warning
    # would only repeat that in the log.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    faiss.omp_set_num_threads(settings.faiss_threads)
    try:
        install(app, await load(app, settings.bundle_path))
    except BundleError as err:
        if settings.require_bundle:
            raise ArtifactMismatchError(f"cannot serve {settings.bundle_path}: {err}") from err
        LOG.error("no bundle served (%s); /readyz is 503 until POST /admin/reload succeeds", err)
    try:
        yield
    finally:
        app.state.bundle = None
