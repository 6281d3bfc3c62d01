"""Start-up, shutdown and hot reload of the served bundle.

The app serves the bundle in ``app.state.bundle``. Loading happens in a worker thread; installing a bundle is a
single reference assignment, so every request sees either the old or the new bundle, whole. Requests take their
bundle once (``service.deps.served_bundle``) and finish on it even if a reload swaps it meanwhile. Reloads are
serialised by a lock; a bundle that fails verification is refused and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import warnings
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from PIL import Image

from model.pose.features import compile_kernels as compile_feature_rows
from model.pose.pose_fit import compile_kernels as compile_fits
from model.retrieval.rerank import compile_kernels as compile_hit_selection
from model.retrieval.stored_vectors import compile_kernels as compile_vector_reads
from model.runtime.bundle_format import BundleError
from service.artifacts import Bundle, load_bundle
from service.config import Settings
from service.device import choose_device
from service.errors import ArtifactMismatchError, BundleRejectedError
from service.memory import configure_allocator, trim_periodically
from service.native_threads import limit_blas_threads

LOG = logging.getLogger(__name__)


def install(app: FastAPI, bundle: Bundle) -> None:
    """Serve ``bundle`` from now on (one reference swap) and update the metrics."""
    app.state.bundle = bundle
    # The bundle's millions of long-lived objects (catalog labels, arrays' owners) would be traversed by every
    # full garbage collection, a pause of tens of ms in the middle of requests; frozen, collections skip them.
    gc.collect()
    gc.freeze()
    app.state.metrics.set_bundle(bundle.model_version, bundle.index.kind, bundle.index.ntotal, bundle.index.poses)


async def load(app: FastAPI, path: Path) -> Bundle:
    settings, metrics = app.state.settings, app.state.metrics
    return await anyio.to_thread.run_sync(load_bundle, path, settings, app.state.device, metrics.observe_microbatch)


def resolve_under_root(name: str | None, settings: Settings) -> Path:
    """The bundle directory a reload request names: relative to the bundles root, or absolute inside it.

    Raises BundleRejectedError for anything outside the root, whether or not it exists.
    """
    root = settings.reload_root
    if name is None:
        return settings.bundle_path.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        raise BundleRejectedError("`bundle` must name a directory inside the bundles root (e.g. \"default\")",
                                  "bundle")
    return path


def _relative(message: str, root: Path) -> str:
    """A verification message with the bundles root left out of its paths."""
    return message.replace(f"{root}{os.sep}", "").replace(str(root), ".")


def record_served(settings: Settings, path: Path) -> None:
    """Remember ``path`` as the served bundle for the next start (atomically; a failure is only logged)."""
    record = settings.served_record
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"bundle": str(path)}))
        os.replace(tmp, record)
    except OSError as err:
        LOG.warning("could not record the served bundle in %s (%s): a restart serves %s", record, err,
                    settings.bundle_path)
        tmp.unlink(missing_ok=True)


def recorded_bundle(settings: Settings) -> Path | None:
    """The bundle a reload recorded, when there is one and it is still inside the bundles root."""
    try:
        path = Path(json.loads(settings.served_record.read_text())["bundle"]).resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.is_relative_to(settings.reload_root) and path.is_dir() else None


async def load_at_start(app: FastAPI) -> Bundle:
    """The recorded bundle, or the configured one when none is recorded or the recorded one no longer loads."""
    settings = app.state.settings
    recorded = recorded_bundle(settings)
    if recorded is not None and recorded != settings.bundle_path.resolve():
        try:
            return await load(app, recorded)
        except BundleError as err:
            LOG.error("the recorded bundle %s does not load (%s); serving the configured %s", recorded, err,
                      settings.bundle_path)
    return await load(app, settings.bundle_path)


async def reload(app: FastAPI, name: str | None) -> tuple[Bundle, str | None]:
    """Load, verify and install the bundle ``name`` under the bundles root (default: the configured one).

    returns: the new bundle and the previous model version. Raises BundleRejectedError, leaving the served
    bundle as it was, when the new one fails.
    """
    settings = app.state.settings
    path = resolve_under_root(name, settings)
    async with app.state.reload_lock:
        previous = app.state.bundle
        try:
            bundle = await load(app, path)
        except BundleError as err:
            app.state.metrics.reloads.labels("refused").inc()
            LOG.warning("reload refused, still serving %s: %s",
                        previous.model_version if previous else "nothing", err)
            where = f" (manifest field {err.field})" if err.field else ""
            raise BundleRejectedError(f"bundle refused{where}: {_relative(str(err), settings.reload_root)}",
                                      "bundle") from err
        install(app, bundle)
        await anyio.to_thread.run_sync(record_served, settings, path)
        app.state.metrics.reloads.labels("accepted").inc()
        LOG.info("now serving %s (was %s)", bundle.model_version, previous.model_version if previous else None)
        return bundle, previous.model_version if previous else None


def compile_service_kernels() -> None:
    """Compile (or read from numba's cache) every compiled loop a request runs, before the first request needs
    them: the 2D feature rows, the pose hits' selection, the re-ranking's fits, the reads of the index's stored
    vectors."""
    compile_feature_rows()
    compile_hit_selection()
    compile_fits()
    compile_vector_reads()


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Process-wide settings, then the configured bundle (fail fast unless ``require_bundle`` is off)."""
    settings = app.state.settings
    app.state.device = choose_device(settings.device)  # refuses to start when a required GPU is missing
    configure_allocator()
    limit_blas_threads(settings.blas_threads)
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels  # Pillow's own bomb check at the service's limit
    # Pillow warns between 1x and 2x its limit; service.images refuses those images itself (413), so the warning
    # would only repeat that in the log.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    await anyio.to_thread.run_sync(compile_service_kernels)
    try:
        install(app, await load_at_start(app))
    except BundleError as err:
        if settings.require_bundle:
            raise ArtifactMismatchError(f"cannot serve {settings.bundle_path}: {err}") from err
        LOG.error("no bundle served (%s); /readyz is 503 until POST /admin/reload succeeds", err)
    trimming = asyncio.create_task(trim_periodically())
    try:
        yield
    finally:
        trimming.cancel()
        app.state.bundle = None
