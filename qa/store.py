"""Chroma store: chunk vectors plus one record per article, embedded or on a server.

`Store` puts together the parts that do the work, each in its own module: the Chroma gateway
(the client, and the one place Chroma's failures become qa's errors), the chunk collection,
the article records, the writers' journal and the compatibility checks. The order in which a
writer uses them is the write protocol's (qa.writer).
"""

import hashlib
import re
import shutil
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from qa import store_compat
from qa.article_records import ArticleRecord, ArticleRecords
from qa.chroma_gateway import ChromaGateway, embedded_gateway, in_parts, server_gateway
from qa.chunk_collection import (
    ArticleChunks,
    ChunkCollection,
    ChunkHit,
    ChunkMeta,
    IndexedChunk,
    date_number,
    in_date_range,
)
from qa.chunking import ChunkSettings
from qa.errors import EmptyCollectionError, InputError, StoreBusyError, StoreError
from qa.journal import Journal
from qa.loading import Article
from qa.settings import Settings
from qa.store_files import check_store_files

# Names other modules import from here; each is defined by the part it belongs to.
__all__ = [
    "ArticleChunks",
    "ArticleRecord",
    "ChunkHit",
    "ChunkMeta",
    "IndexedChunk",
    "Store",
    "date_number",
    "in_date_range",
    "in_parts",
    "validate_collection_name",
]

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,40}[A-Za-z0-9]$")


class Store:
    """One named collection (and its article records) in an embedded or remote Chroma."""

    def __init__(
        self, chroma: ChromaGateway, name: str, cache_dir: Path, lock_path: Path | None = None
    ) -> None:
        self.chroma = chroma
        self.name = name
        self.location = chroma.location
        # Embedded only: a Chroma server orders concurrent writes itself.
        self.lock_path = lock_path
        # Data derived from the collection (the keyword index), kept on this machine.
        self.cache_dir = cache_dir
        self.chunk_collection = ChunkCollection(chroma, name)
        self.records = ArticleRecords(chroma, name)
        self.journal = Journal(chroma, name)

    @classmethod
    def open(cls, settings: Settings, create: bool = True, reading: bool = False) -> "Store":
        """Connect to the store the settings name; `create=False` never creates a directory.
        `reading`: opened to ask, so an embedded store is read without importing chromadb
        where that can be (a server never imports it)."""
        validate_collection_name(settings.store.collection)
        name = settings.store.collection
        if settings.store.chroma_url:
            url = settings.store.chroma_url
            server = hashlib.sha256(url.encode()).hexdigest()[:12]
            cache_dir = settings.store.data_dir / "index" / f"server-{server}" / name
            gateway = server_gateway(url, settings.store.chroma_timeout)
            return cls(gateway, name, cache_dir)
        path = settings.store.data_dir / "chroma"
        if not create and not path.exists():
            raise EmptyCollectionError(
                f"Nothing has been ingested into collection {name!r} yet (no store at {path}).",
                "Run: qa ingest PATH",
            )
        check_store_files(path)
        return cls(
            embedded_gateway(path, reading),
            name,
            settings.store.data_dir / "index" / name,
            lock_path=settings.store.data_dir / "chroma.write.lock",
        )

    def reopen_vectors_if_written(self) -> None:
        """Open the reader again if articles were recorded since it was opened: an embedded
        store's reader keeps the vector index it loaded, and their chunks (written before
        their records) are then searched from the next query on."""
        opened_at = self.chroma.reader_opened_at
        if opened_at is not None and self.records.any_written_since(opened_at):
            self.chroma.reopen_reader()
            self.chunk_collection.forget()

    @property
    def client(self) -> Any:
        """Chroma's own client."""
        return self.chroma.client

    def writing(self) -> AbstractContextManager[None]:
        """Hold the write lock: one writer at a time per embedded store; readers go on."""
        return write_lock(self.lock_path, self.location)

    def prepare(self, embedding_model: str, chunking: ChunkSettings) -> None:
        """Create the collection for this model and chunking, or check it was built with them."""
        recorded = self._metadata()
        if recorded is not None:
            self.check_compatible(embedding_model, chunking, recorded)
            return
        try:
            self.chroma.create_collection(
                self.name, store_compat.built_with(embedding_model, chunking)
            )
        except StoreError:
            # Another writer (through a server) created it a moment ago: it must fit too.
            recorded = self._metadata()
            if recorded is None:
                raise
            self.check_compatible(embedding_model, chunking, recorded)
        self.records.create()

    def check_compatible(
        self, embedding_model: str, chunking: ChunkSettings, recorded: dict | None = None
    ) -> None:
        """Refuse a model or chunking other than the collection's; a new collection takes any."""
        recorded = recorded if recorded is not None else self._metadata()
        if recorded is not None:
            store_compat.check_compatible(self.name, embedding_model, chunking, recorded)

    def check_embedding_model(self, embedding_model: str, recorded: dict | None = None) -> None:
        """Refuse to mix vectors of two embedding models in one collection."""
        recorded = recorded if recorded is not None else self._require_metadata()
        store_compat.check_embedding_model(self.name, embedding_model, recorded)

    def recorded_settings(self) -> dict[str, Any]:
        """The embedding model and chunk settings the collection was built with."""
        return dict(self._require_metadata())

    def collection_id(self) -> str | None:
        """Chroma's id of the chunk collection: a new one after every reset."""
        collection = self.chroma.collection(self.name)
        return None if collection is None else str(collection.id)

    def reset(self) -> int:
        """Delete the collection and its article records; returns how many articles it held."""
        if self._metadata() is None:
            return 0
        held = len(self.article_hashes())
        self.chroma.delete_collection(self.name)
        for name in (self.records.name, self.journal.name):
            if self.chroma.collection(name) is not None:
                self.chroma.delete_collection(name)
        self.chunk_collection.forget()
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        return held

    # Chunks: see qa.chunk_collection.

    def put_chunks(self, batch: Sequence[ArticleChunks]) -> None:
        """Write these articles' chunks and vectors (readers ignore them until recorded)."""
        self.chunk_collection.put(batch)

    def keep_only(self, keep: dict[str, Collection[str]]) -> int:
        """Delete these articles' chunks of versions not given; returns how many went."""
        return self.chunk_collection.keep_only(keep)

    def chunk_versions(self, article_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
        """(chunk id, article id, content hash) of every chunk of these articles."""
        return self.chunk_collection.versions(article_ids)

    def indexed_chunks_of(self, versions: dict[str, str]) -> list[IndexedChunk]:
        """The chunks of these article versions, as the keyword index sees them."""
        return self.chunk_collection.indexed_of(versions)

    def indexed_chunks(self) -> Iterator[IndexedChunk]:
        """Every chunk as the keyword index sees it: title and text, and its date."""
        return self.chunk_collection.indexed()

    def query(
        self, vector: Sequence[float], k: int, as_of: str | None = None, since: str | None = None
    ) -> list[ChunkHit]:
        """The `k` chunks nearest to `vector`, optionally only from articles dated in a range."""
        return self.chunk_collection.query(vector, k, as_of=as_of, since=since)

    def chunks(self, chunk_ids: Sequence[str]) -> list[ChunkHit]:
        """The chunks with these ids, with their vectors, in the order asked."""
        return self.chunk_collection.get(chunk_ids)

    def chunk_ids(self) -> list[str]:
        """The id of every chunk in the collection."""
        return self.chunk_collection.ids()

    def chunk_count(self) -> int:
        """How many chunks the collection holds (Chroma counts them all)."""
        return self.chunk_collection.count()

    def is_empty(self) -> bool:
        """Whether the collection holds no chunk, at the cost of reading one id."""
        return self.chunk_collection.is_empty()

    # Article records: see qa.article_records.

    def put_records(self, batch: Sequence[ArticleChunks], written_at: int) -> None:
        """Record these articles' versions: from now on readers answer from them."""
        self.records.put(batch, written_at)

    def records_of(self, article_ids: Sequence[str]) -> dict[str, ArticleRecord]:
        """The record of each of these articles that has one."""
        return self.records.of(article_ids)

    def current_versions(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The recorded content hash of each of these articles that has a record."""
        return {id_: record.hash for id_, record in self.records.of(article_ids).items()}

    def records_written_since(self, written_at: int) -> Iterator[list[ArticleRecord]]:
        """The records written at or after `written_at` (ms since the epoch), a page at a
        time."""
        return self.records.written_since(written_at)

    def articles(self) -> list[ArticleRecord]:
        """Every ingested article, newest first."""
        return self.records.all()

    def article_hashes(self) -> dict[str, str]:
        """Content hash of every ingested article, by id."""
        return {record.id: record.hash for record in self.articles()}

    def article(self, article_id: str) -> Article:
        """The full article as ingested (the text all offsets point into)."""
        return self.records.article(article_id)

    # The journal: see qa.journal and qa.writer.

    def journal_entries(self) -> list[tuple[str, dict[str, Any]]]:
        return self.journal.entries()

    def put_journal_entry(self, entry_id: str, meta: dict[str, Any]) -> None:
        self.journal.put(entry_id, meta)

    def delete_journal_entry(self, entry_id: str) -> None:
        self.journal.delete(entry_id)

    def _metadata(self) -> dict[str, Any] | None:
        """Collection metadata, or None when the collection does not exist."""
        collection = self.chroma.collection(self.name)
        return None if collection is None else dict(collection.metadata or {})

    def _require_metadata(self) -> dict[str, Any]:
        recorded = self._metadata()
        if recorded is None or self.is_empty():
            raise EmptyCollectionError(
                f"Nothing has been ingested into collection {self.name!r} yet.",
                "Run: qa ingest PATH",
            )
        return recorded


@contextmanager
def write_lock(lock_path: Path | None, location: str) -> Iterator[None]:
    """Hold the write lock at `lock_path` (None: no lock, as on a server).

    Two processes writing through embedded Chroma at once lose vectors silently, so a second
    writer stops at once instead of interleaving.
    """
    if lock_path is None:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StoreBusyError(
            f"Another qa process is writing to the store at {location}.",
            "Wait for it to finish, then run this again.",
        ) from None
    try:
        yield
    finally:
        lock.release()


def validate_collection_name(name: str) -> None:
    if not COLLECTION_NAME.match(name):
        raise InputError(
            f"Invalid collection name {name!r}.",
            "Use 3-42 letters, digits, '-' or '_', starting and ending with a letter or digit.",
        )
