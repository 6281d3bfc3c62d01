"""The Milvus options shared by `unihpr-build index`, `add`, `remove` and `to-milvus`: the server's URI and token,
from the command line or (better for the token) the environment."""

from __future__ import annotations

from typing import Annotated

import typer

from index_builder.bundle.milvus_collection import MilvusTarget
from index_builder.errors import ConfigError

BACKENDS = ("faiss", "milvus")
BackendOpt = Annotated[str, typer.Option(help="where the vectors go: faiss (index.faiss in the bundle) or milvus "
                                              "(a collection of this bundle version at --milvus-uri)")]
MilvusUriOpt = Annotated[str | None, typer.Option(envvar="UNIHPR_MILVUS_URI",
                                                  help="Milvus server, e.g. http://127.0.0.1:19530")]
MilvusTokenOpt = Annotated[str | None, typer.Option(envvar="UNIHPR_MILVUS_TOKEN", show_default=False,
                                                    help="Milvus token (user:password or API key); better from "
                                                         "the environment than the command line")]


def milvus_server(uri: str | None, token: str | None) -> MilvusTarget | None:
    """The server of --milvus-uri, None when none is given."""
    return MilvusTarget(uri, token) if uri else None


def milvus_target(backend: str, uri: str | None, token: str | None) -> MilvusTarget | None:
    """The Milvus server of ``--backend milvus`` (None for faiss); ConfigError for a bad combination."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend}: one of {', '.join(BACKENDS)}")
    if backend == "faiss":
        return None
    if not uri:
        raise ConfigError("--backend milvus needs --milvus-uri (or UNIHPR_MILVUS_URI)")
    return MilvusTarget(uri, token)
