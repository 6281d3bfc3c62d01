"""`unihpr-build add | remove | to-milvus`: change a bundle's library without retraining; each writes a new,
verified bundle beside the old one, ready for `POST /admin/reload`.

Retrain rule (printed when it applies): rebuild the index with `unihpr-build index` when recall@10 at the stored
nprobe falls below 0.95 on independent queries, or when the vectors added and removed since the IVF lists were
trained exceed half of the vectors they were trained on; an exact (Flat) index, when it passes 100k vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from index_builder.bundle.library_update import LibraryChange, add_clips, copy_to_milvus, remove_clips
from index_builder.bundle.milvus_options import MilvusTokenOpt, MilvusUriOpt, milvus_server
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ArtifactError, ConfigError

app = typer.Typer(no_args_is_help=True)

OUT_HELP = ("new bundle directory (default: beside BUNDLE, named <bundle>-lib<N>); never BUNDLE itself")


def _report(change: LibraryChange, verb: str) -> None:
    manifest = change.manifest
    history = manifest.index.history
    typer.echo(f"{change.out}: {verb} {len(change.clips)} clip(s), {change.vectors} vectors; now "
               f"{manifest.database.clips} clips, {manifest.index.ntotal} vectors ({manifest.model_version}) in "
               f"{change.seconds:.1f} s")
    point = manifest.index.operating_point
    effort = f"efSearch {point.ef_search}" if manifest.index.type == "hnsw" else f"nprobe {point.nprobe}"
    if manifest.index.backend is not None:
        typer.echo(f"  vectors in Milvus collection {manifest.index.backend.collection} at "
                   f"{manifest.index.backend.uri} ({manifest.index.backend.index_type})")
    typer.echo(f"  recall@10 {change.recall_at_10:.3f} at the stored {effort}; "
               f"since training: {history.trained_vectors} trained, +{history.added_vectors} "
               f"-{history.removed_vectors} vectors")
    if change.retrain:
        typer.echo(f"  retrain the index with `unihpr-build index`: {'; '.join(change.retrain)}")
    typer.echo(f"  serve it: POST /admin/reload {{\"bundle\": \"{change.out.name}\"}}")


@app.command(short_help="Add the clips of a pose database to a bundle, without retraining.")
def add(
    bundle: Annotated[Path, typer.Argument(help="bundle directory to start from")],
    db: Annotated[Path, typer.Argument(help="pose database with the clips to add (from `unihpr-build ingest`)")],
    out: Annotated[Path | None, typer.Option(help=OUT_HELP)] = None,
    milvus_uri: MilvusUriOpt = None,
    milvus_token: MilvusTokenOpt = None,
) -> None:
    """Add every clip of DB to BUNDLE: embedded by the bundle's own encoder, appended to its index (ids of the
    existing vectors unchanged, IVF lists as trained). A clip name already in BUNDLE is an error: remove it first.
    Prints a retrain advice when recall@10 at the stored nprobe < 0.95 or (added + removed) / trained vectors
    > 0.5."""
    if not db.is_file():
        raise ArtifactError(f"{db}: no such pose database; make one with `unihpr-build ingest`")
    _report(add_clips(bundle, MotionDatabase.load(db), out, milvus=milvus_server(milvus_uri, milvus_token)),
            "added")


@app.command(short_help="Remove clips from a bundle by name, without retraining.")
def remove(
    bundle: Annotated[Path, typer.Argument(help="bundle directory to start from")],
    clip: Annotated[list[str] | None, typer.Option(help="clip name to remove (repeatable)")] = None,
    clips_file: Annotated[Path | None, typer.Option(help="text file of clip names, one per line")] = None,
    out: Annotated[Path | None, typer.Option(help=OUT_HELP)] = None,
    milvus_uri: MilvusUriOpt = None,
    milvus_token: MilvusTokenOpt = None,
) -> None:
    """Remove clips from BUNDLE by name (compaction: the other vectors are renumbered in their order, result ids
    `<clip>#<frame>` stay). An unknown name is an error. Prints a retrain advice under the same rule as `add`."""
    names = list(clip or [])
    if clips_file is not None:
        if not clips_file.is_file():
            raise ConfigError(f"{clips_file}: no such file")
        names += [line.strip() for line in clips_file.read_text().splitlines() if line.strip()]
    if not names:
        raise ConfigError("name the clips to remove with --clip or --clips-file")
    _report(remove_clips(bundle, names, out, milvus=milvus_server(milvus_uri, milvus_token)), "removed")


@app.command("to-milvus", short_help="Move a bundle's vectors into a Milvus collection (a new bundle version).")
def to_milvus(
    bundle: Annotated[Path, typer.Argument(help="bundle directory whose vectors are in index.faiss")],
    milvus_uri: MilvusUriOpt = None,
    milvus_token: MilvusTokenOpt = None,
    out: Annotated[Path | None, typer.Option(help=OUT_HELP)] = None,
) -> None:
    """Write BUNDLE's vectors into a Milvus collection of a new bundle version (same library, same plan and
    operating point: FLAT, IVF_FLAT with the same nlist / nprobe, or HNSW with the same M / ef), without
    index.faiss. Serve it with UNIHPR_INDEX_BACKEND=milvus."""
    target = milvus_server(milvus_uri, milvus_token)
    if target is None:
        raise ConfigError("give --milvus-uri (or UNIHPR_MILVUS_URI)")
    _report(copy_to_milvus(bundle, target, out), "moved to Milvus")
