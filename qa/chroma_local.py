"""Reading an embedded Chroma store through Chroma's own Rust core, without importing chromadb.

chromadb's Python package is a layer over `chromadb_rust_bindings`, the compiled core that
does the work; importing the package costs a cold `qa ask` about 0.7 s (it builds every client,
telemetry and embedding-function class it has), the core alone 0.02 s. Asking needs four of
the core's calls (a collection by name, `get`, `query`, `count`), made here with the same
arguments chromadb's own client passes. The core's calls are not a published interface, so
this reader is used only where they have the signatures it was written against
(`local_reader` returns None otherwise, and chromadb's client reads as before).
"""

import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

TENANT, DATABASE = "default_tenant", "default_database"
# The core's signatures this reader passes its arguments by (chromadb 1.5).
SIGNATURES = {
    "Bindings": "(allow_reset, sqlite_db_config, hnsw_cache_size, persist_path=None)",
    "get_collection": "($self, name, tenant, database)",
    "get": "($self, collection_id, ids=None, where=..., limit=None, offset=0, "
    "where_document=None, include=..., tenant=..., database=...)",
    "query": "($self, collection_id, ids, query_embeddings, n_results, where=..., "
    "where_document=None, include=..., tenant=..., database=...)",
    "count": "($self, collection_id, tenant=..., database=...)",
}


def local_reader(path: Path) -> "LocalReader | None":
    """A reader of the store at `path`, or None where this Chroma's core is not the one this
    module was written against."""
    try:
        import chromadb_rust_bindings as core
    except ImportError:
        return None
    if not fits(core):
        return None
    return LocalReader(core, path)


def fits(core: Any) -> bool:
    found = {"Bindings": getattr(core.Bindings, "__text_signature__", None)}
    for name in SIGNATURES.keys() - {"Bindings"}:
        found[name] = getattr(getattr(core.Bindings, name, None), "__text_signature__", None)
    return found == SIGNATURES


class LocalReader:
    """The read calls of the embedded store at `path`, as chromadb's client makes them."""

    def __init__(self, core: Any, path: Path) -> None:
        # Ms since the epoch, as article records are stamped: the vector indexes this reader
        # loads (each on its first search) hold every chunk written before now.
        self.opened_at = time.time_ns() // 1_000_000
        config = core.SqliteDBConfig(
            hash_type=core.MigrationHash.MD5,
            migration_mode=core.MigrationMode.Apply,
            url=str(path / "chroma.sqlite3"),
        )
        # chromadb's own choice: each vector index keeps four data files and a metadata file
        # open, within the process's limit of open files.
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.core = core.Bindings(
            allow_reset=False,
            sqlite_db_config=config,
            hnsw_cache_size=files // 5,
            persist_path=str(path),
        )

    def get_collection(self, name: str) -> "LocalCollection":
        return LocalCollection(self.core, self.core.get_collection(name, TENANT, DATABASE))


class LocalCollection:
    """One collection's read calls, answering as chromadb's `Collection` does."""

    def __init__(self, core: Any, model: Any) -> None:
        self.core = core
        self.id = model.id
        self.name = model.name
        self.metadata = model.metadata

    def get(
        self,
        *,
        include: list[str],
        ids: list[str] | None = None,
        where: dict[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        found = self.core.get(str(self.id), ids, json.dumps(where) if where else None, limit,
                              offset or 0, None, include, TENANT, DATABASE)  # fmt: skip
        return {
            "ids": found.ids,
            # As chromadb's client gives them: in one array.
            "embeddings": np.array(found.embeddings) if "embeddings" in include else None,
            "documents": found.documents,
            "metadatas": found.metadatas,
        }

    def query(
        self,
        *,
        query_embeddings: list[list[float]],
        n_results: int,
        where: dict[str, Any] | None,
        include: list[str],
    ) -> dict[str, Any]:
        found = self.core.query(str(self.id), None, query_embeddings, n_results,
                                json.dumps(where) if where else None, None, include, TENANT,
                                DATABASE)  # fmt: skip
        return {
            "ids": found.ids,
            "documents": found.documents,
            "metadatas": found.metadatas,
            "distances": found.distances,
        }

    def count(self) -> int:
        return int(self.core.count(str(self.id), TENANT, DATABASE))
