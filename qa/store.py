"""Chroma store: chunk vectors plus one record per article, embedded or on a server."""

import hashlib
import re
import shutil
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from qa.chunking import Chunk, ChunkSettings
from qa.errors import (
    EmptyCollectionError,
    InputError,
    ModelMismatchError,
    StoreBusyError,
    StoreError,
    StoreUnavailableError,
)
from qa.loading import Article
from qa.masking import mask_secrets
from qa.settings import Settings
from qa.store_files import DATABASE, check_store_files, damage_named_by, damaged

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,40}[A-Za-z0-9]$")
ARTICLES_SUFFIX = "__articles"
# Article records hold full texts for quoting; Chroma wants a vector for every record,
# and these are never searched, so each gets the same one-dimensional placeholder.
ARTICLE_VECTOR = [1.0]
EXTRA_PREFIX = "x_"
# Reads of the whole collection go in pages, so a server never sends one huge reply.
PAGE_SIZE = 5000
# A date-filtered search first looks this many times as far without the filter.
UNFILTERED_SEARCH_FACTOR = 2
JOURNAL_SUFFIX = "__journal"
# Articles named in one `where` filter when reading their chunks.
ARTICLES_PER_READ = 100
T = TypeVar("T")


@dataclass(frozen=True)
class ArticleRecord:
    """What the store knows about an ingested article."""

    id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    hash: str
    chunks: int
    # When the record was written (ms since the epoch); None in stores written before it was.
    written_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        """An article as `qa sources --json` and the MCP `sources` tool list it."""
        return {
            "id": self.id,
            "title": self.title,
            "date": self.date,
            "source": self.source,
            "url": self.url,
            "chunks": self.chunks,
        }


# An article with its chunks and their vectors, as ingest hands them over.
ArticleChunks = tuple[Article, Sequence[Chunk], Sequence[Sequence[float]]]


@dataclass(frozen=True)
class IndexedChunk:
    """What the keyword index needs of a chunk: its id and version, the text to match (title
    and text) and its date."""

    id: str
    article_id: str
    article_hash: str
    text: str
    date_number: int | None

    @classmethod
    def of(cls, chunk_id: str, text: str, meta: dict[str, Any]) -> "IndexedChunk":
        """From what Chroma keeps of a chunk."""
        return cls(
            chunk_id,
            meta["article_id"],
            meta.get("article_hash", ""),
            cls.searched(meta.get("title", ""), text),
            meta.get("date_number"),
        )

    @staticmethod
    def searched(title: str, text: str) -> str:
        """What the keyword index matches: the article's title, then the chunk's text."""
        return f"{title}\n{text}"


@dataclass(frozen=True)
class ChunkHit:
    """A chunk returned by a query; `distance` is None when it was fetched by id."""

    chunk_id: str
    text: str
    meta: "ChunkMeta"
    distance: float | None
    vector: Any = None


@dataclass(frozen=True)
class ChunkMeta:
    """What Chroma keeps beside a chunk's vector: its article, and where it sits in its text."""

    article_id: str
    article_hash: str | None
    title: str
    date: str | None
    source: str | None
    url: str | None
    start: int
    end: int
    index: int

    @classmethod
    def all_of(cls, article: Article, chunks: Sequence[Chunk]) -> list["ChunkMeta"]:
        """The metadata of each of an article's chunks (its hash computed once)."""
        content_hash = article.hash
        return [
            cls(
                article_id=article.id,
                article_hash=content_hash,
                title=article.title,
                date=article.date,
                source=article.source,
                url=article.url,
                start=chunk.start,
                end=chunk.end,
                index=chunk.index,
            )
            for chunk in chunks
        ]

    def to_chroma(self) -> dict[str, Any]:
        """Chroma's metadata: scalars only, none of them None; the date also as a number, for
        date filters."""
        meta = {
            **asdict(self),
            "date_number": date_number(self.date) if self.date else None,
        }
        return {key: value for key, value in meta.items() if value is not None}

    @classmethod
    def from_chroma(cls, meta: dict[str, Any]) -> "ChunkMeta":
        article_id = meta["article_id"]
        return cls(
            article_id=article_id,
            article_hash=meta.get("article_hash"),
            title=meta.get("title", article_id),
            date=meta.get("date"),
            source=meta.get("source"),
            url=meta.get("url"),
            start=int(meta["start"]),
            end=int(meta["end"]),
            index=int(meta.get("index", 0)),
        )


class Store:
    """One named collection (and its article records) in an embedded or remote Chroma."""

    def __init__(
        self, client: Any, name: str, location: str, cache_dir: Path, lock_path: Path | None = None
    ) -> None:
        self.client = client
        self.name = name
        self.location = location
        # Embedded only: a Chroma server orders concurrent writes itself.
        self.lock_path = lock_path
        # Data derived from the collection (the keyword index), kept on this machine.
        self.cache_dir = cache_dir
        self._max_batch: int | None = None
        self._chunk_collection: Any = None

    @classmethod
    def open(cls, settings: Settings, create: bool = True) -> "Store":
        """Connect to the store the settings name; `create=False` never creates a directory."""
        validate_collection_name(settings.collection)
        name = settings.collection
        if settings.chroma_url:
            url = settings.chroma_url
            server = hashlib.sha256(url.encode()).hexdigest()[:12]
            cache_dir = settings.data_dir / "index" / f"server-{server}" / name
            # `location` is for messages: it never shows a password or token in the URL.
            return cls(http_client(url), name, mask_secrets(url), cache_dir)
        path = settings.data_dir / "chroma"
        if not create and not path.exists():
            raise EmptyCollectionError(
                f"Nothing has been ingested into collection {name!r} yet (no store at {path}).",
                "Run: qa ingest PATH",
            )
        check_store_files(path)
        return cls(
            persistent_client(path),
            name,
            str(path),
            settings.data_dir / "index" / name,
            lock_path=settings.data_dir / "chroma.write.lock",
        )

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write lock: one writer at a time per embedded store; readers go on.

        Two processes writing through embedded Chroma at once lose vectors silently, so a
        second writer stops at once instead of interleaving.
        """
        if self.lock_path is None:
            yield
            return
        from filelock import FileLock, Timeout

        lock = FileLock(self.lock_path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise StoreBusyError(
                f"Another qa process is writing to the store at {self.location}.",
                "Wait for it to finish, then run this again.",
            ) from None
        try:
            yield
        finally:
            lock.release()

    def prepare(self, embedding_model: str, chunking: ChunkSettings) -> None:
        """Create the collection for this model and chunking, or check it was built with them."""
        recorded = self._metadata()
        if recorded is not None:
            self.check_compatible(embedding_model, chunking, recorded)
            return
        wanted = {"embedding_model": embedding_model, **chunking.as_metadata()}
        try:
            self._call(
                lambda: self.client.create_collection(
                    self.name, metadata=wanted, configuration={"hnsw": {"space": "cosine"}}
                )
            )
        except StoreError:
            # Another writer (through a server) created it a moment ago: it must fit too.
            recorded = self._metadata()
            if recorded is None:
                raise
            self.check_compatible(embedding_model, chunking, recorded)
        self._articles()

    def check_compatible(
        self, embedding_model: str, chunking: ChunkSettings, recorded: dict | None = None
    ) -> None:
        """Refuse a model or chunking other than the collection's; a new collection takes any."""
        recorded = recorded if recorded is not None else self._metadata()
        if recorded is None:
            return
        self.check_embedding_model(embedding_model, recorded)
        differing = {
            key: (recorded.get(key), value)
            for key, value in chunking.as_metadata().items()
            if recorded.get(key) != value
        }
        if differing:
            was = ", ".join(f"{key}={old}" for key, (old, _) in differing.items())
            asked = ", ".join(f"{key}={new}" for key, (_, new) in differing.items())
            raise ModelMismatchError(
                f"Collection {self.name!r} was built with {was}; this ingest asks for {asked}.",
                "Use the recorded settings, another --collection, or `qa reset` first.",
            )

    def check_embedding_model(self, embedding_model: str, recorded: dict | None = None) -> None:
        """Refuse to mix vectors of two embedding models in one collection."""
        recorded = recorded if recorded is not None else self._require_metadata()
        if recorded.get("embedding_model") != embedding_model:
            raise ModelMismatchError(
                f"Collection {self.name!r} was built with embedding model "
                f"{recorded.get('embedding_model')!r}, but {embedding_model!r} is configured.",
                "Use the same model (QA_EMBEDDINGS / QA_EMBEDDING_MODEL), another "
                "--collection, or `qa reset` and ingest again.",
            )

    def recorded_settings(self) -> dict[str, Any]:
        """The embedding model and chunk settings the collection was built with."""
        return dict(self._require_metadata())

    def article_hashes(self) -> dict[str, str]:
        """Content hash of every ingested article, by id."""
        return {record.id: record.hash for record in self.articles()}

    def current_versions(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The recorded content hash of each of these articles that has a record."""
        return {id_: record.hash for id_, record in self.records_of(article_ids).items()}

    def records_of(self, article_ids: Sequence[str]) -> dict[str, ArticleRecord]:
        """The record of each of these articles that has one."""
        if not article_ids:
            return {}
        found = self._read_articles(ids=list(set(article_ids)), include=["metadatas"])
        return {record.id: record for record in records_in(found)}

    def put_chunks(self, batch: Sequence[ArticleChunks]) -> None:
        """Write these articles' chunks and vectors (readers ignore them until recorded)."""
        rows = [
            (
                chunk.id,
                [float(x) for x in vector],
                chunk.text,
                meta.to_chroma(),
            )
            for article, chunks, vectors in batch
            for chunk, vector, meta in zip(
                chunks, vectors, ChunkMeta.all_of(article, chunks), strict=True
            )
        ]
        for part in self._slices(rows):
            ids, embeddings, documents, metadatas = (
                list(column) for column in zip(*part, strict=True)
            )
            self._call(
                lambda ids=ids, e=embeddings, d=documents, m=metadatas: self._chunks().upsert(
                    ids=ids, embeddings=e, documents=d, metadatas=m
                )
            )

    def put_records(self, batch: Sequence[ArticleChunks], written_at: int) -> None:
        """Record these articles' versions: from now on readers answer from them."""
        records = [
            (article.id, article.text, article_metadata(article, len(chunks), written_at))
            for article, chunks, _ in batch
        ]
        articles = self._articles()
        for part in self._slices(records):
            ids, documents, metadatas = (list(column) for column in zip(*part, strict=True))
            self._call(
                lambda ids=ids, d=documents, m=metadatas: articles.upsert(
                    ids=ids, embeddings=[ARTICLE_VECTOR] * len(ids), documents=d, metadatas=m
                )
            )

    def keep_only(self, keep: dict[str, Collection[str]]) -> int:
        """Delete the chunks of these articles that are of none of the versions given (an
        empty collection: every chunk of that article); returns how many went."""
        stale = [
            chunk_id
            for chunk_id, article_id, article_hash in self.chunk_versions(list(keep))
            if article_hash not in keep[article_id]
        ]
        for part in self._slices(stale):
            self._call(lambda part=part: self._chunks().delete(ids=list(part)))
        return len(stale)

    def chunk_versions(self, article_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
        """(chunk id, article id, content hash) of every chunk of these articles."""
        return [
            (id_, meta["article_id"], meta.get("article_hash"))
            for page in self._pages_of(article_ids, ["metadatas"])
            for id_, meta in zip(page["ids"], page["metadatas"], strict=True)
        ]

    def records_written_since(self, written_at: int) -> list[ArticleRecord]:
        """The records written at or after `written_at` (ms since the epoch)."""
        return records_in(
            self._read_articles(where={"written_at": {"$gte": written_at}}, include=["metadatas"])
        )

    def indexed_chunks_of(self, versions: dict[str, str]) -> list[IndexedChunk]:
        """The chunks of these article versions, as the keyword index sees them."""
        return [
            IndexedChunk.of(id_, text, meta)
            for page in self._pages_of(list(versions), ["documents", "metadatas"])
            for id_, text, meta in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            )
            if versions[meta["article_id"]] == meta.get("article_hash")
        ]

    def _pages_of(self, article_ids: Sequence[str], include: list[str]) -> Iterator[dict]:
        """The chunks of these articles, a `get` for every ARTICLES_PER_READ of them."""
        for part in in_parts(article_ids, ARTICLES_PER_READ):
            yield self._call(
                lambda part=part: self._chunks().get(
                    where={"article_id": {"$in": list(part)}}, include=include
                )
            )

    def collection_id(self) -> str | None:
        """Chroma's id of the chunk collection: a new one after every reset."""
        collection = self._existing_collection(self.name)
        return None if collection is None else str(collection.id)

    # The journal: which article versions each writer is writing now (see qa.writer).

    def journal_entries(self) -> list[tuple[str, dict[str, Any]]]:
        journal = self._existing_collection(self.name + JOURNAL_SUFFIX)
        if journal is None:
            return []
        found = self._call(lambda: journal.get(include=["metadatas"]))
        return list(zip(found["ids"], found["metadatas"], strict=True))

    def put_journal_entry(self, entry_id: str, meta: dict[str, Any]) -> None:
        journal = self._call(
            lambda: self.client.get_or_create_collection(self.name + JOURNAL_SUFFIX)
        )
        self._call(
            lambda: journal.upsert(ids=[entry_id], embeddings=[ARTICLE_VECTOR], metadatas=[meta])
        )

    def delete_journal_entry(self, entry_id: str) -> None:
        journal = self._existing_collection(self.name + JOURNAL_SUFFIX)
        if journal is not None:
            self._call(lambda: journal.delete(ids=[entry_id]))

    def query(
        self, vector: Sequence[float], k: int, as_of: str | None = None, since: str | None = None
    ) -> list[ChunkHit]:
        """The `k` chunks nearest to `vector`, optionally only from articles dated in a range.

        `since` and `as_of` are inclusive YYYY-MM-DD bounds; either may be left out.
        """
        if not (since or as_of):
            return self._nearest(vector, k, None)
        # A date filter makes Chroma's search several times slower (17 ms against 3 on the
        # 600-article news set), and most chunks usually pass it: so search without it first
        # and filter here. When k of the nearest pass, they are the k nearest that pass.
        low, high = (date_number(day) if day else None for day in (since, as_of))
        nearest = [
            hit
            for hit in self._nearest(vector, k * UNFILTERED_SEARCH_FACTOR, None)
            if in_date_range(hit.meta.date, low, high)
        ]
        if len(nearest) >= k:
            return nearest[:k]
        bounds = [
            {"date_number": {operator: number}}
            for operator, number in (("$gte", low), ("$lte", high))
            if number is not None
        ]
        return self._nearest(vector, k, {"$and": bounds} if len(bounds) == 2 else bounds[0])

    def _nearest(
        self, vector: Sequence[float], k: int, where: dict[str, Any] | None
    ) -> list[ChunkHit]:
        result = self._call(
            lambda: self._chunks().query(
                query_embeddings=[[float(x) for x in vector]],
                n_results=k,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        )
        return [
            ChunkHit(id_, doc, ChunkMeta.from_chroma(meta), dist)
            for id_, doc, meta, dist in zip(
                result["ids"][0],
                result["documents"][0],
                result["metadatas"][0],
                result["distances"][0],
                strict=True,
            )
        ]

    def chunk_ids(self) -> list[str]:
        """The id of every chunk in the collection."""
        return self._call(lambda: self._chunks().get(include=[]))["ids"]

    def indexed_chunks(self) -> Iterator[IndexedChunk]:
        """Every chunk as the keyword index sees it: title and text, and its date."""
        for page in self._pages(["documents", "metadatas"]):
            for id_, text, meta in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            ):
                yield IndexedChunk.of(id_, text, meta)

    def _pages(self, include: list[str]) -> Iterator[dict[str, Any]]:
        """The whole chunk collection, a page at a time."""
        collection = self._chunks()
        offset = 0
        while True:
            page = self._call(
                lambda offset=offset: collection.get(
                    include=include, limit=PAGE_SIZE, offset=offset
                )
            )
            yield page
            if len(page["ids"]) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    def chunks(self, chunk_ids: Sequence[str]) -> list[ChunkHit]:
        """The chunks with these ids, with their vectors, in the order asked."""
        if not chunk_ids:
            return []
        found = self._call(
            lambda: self._chunks().get(
                ids=list(chunk_ids), include=["documents", "metadatas", "embeddings"]
            )
        )
        hits = {
            id_: ChunkHit(id_, doc, ChunkMeta.from_chroma(meta), None, vector)
            for id_, doc, meta, vector in zip(
                found["ids"],
                found["documents"],
                found["metadatas"],
                found["embeddings"],
                strict=True,
            )
        }
        return [hits[id_] for id_ in chunk_ids if id_ in hits]

    def articles(self) -> list[ArticleRecord]:
        """Every ingested article, newest first."""
        items = records_in(self._read_articles(include=["metadatas"]))
        return sorted(items, key=lambda item: (item.date or "", item.id), reverse=True)

    def article(self, article_id: str) -> Article:
        """The full article as ingested (the text all offsets point into)."""
        found = self._read_articles(ids=[article_id], include=["documents", "metadatas"])
        if not found["ids"]:
            raise InputError(f"No article with id {article_id!r} in collection {self.name!r}.")
        meta = found["metadatas"][0]
        return Article(
            id=article_id,
            title=meta.get("title", article_id),
            text=found["documents"][0],
            date=meta.get("date"),
            source=meta.get("source"),
            url=meta.get("url"),
            extra={
                key.removeprefix(EXTRA_PREFIX): value
                for key, value in meta.items()
                if key.startswith(EXTRA_PREFIX)
            },
        )

    def reset(self) -> int:
        """Delete the collection and its article records; returns how many articles it held."""
        if self._metadata() is None:
            return 0
        held = len(self.article_hashes())
        for name in (self.name, self.name + ARTICLES_SUFFIX, self.name + JOURNAL_SUFFIX):
            if name == self.name or self._existing_collection(name) is not None:
                self._call(lambda name=name: self.client.delete_collection(name))
        self._chunk_collection = None
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        return held

    def _metadata(self) -> dict[str, Any] | None:
        """Collection metadata, or None when the collection does not exist."""
        collection = self._existing_collection(self.name)
        return None if collection is None else dict(collection.metadata or {})

    def _existing_collection(self, name: str) -> Any:
        """The collection called `name`, or None; never creates it."""
        from chromadb.errors import NotFoundError

        try:
            return self._call(lambda: self.client.get_collection(name))
        except StoreError as error:
            if isinstance(error.__cause__, NotFoundError):
                return None
            raise

    def _require_metadata(self) -> dict[str, Any]:
        recorded = self._metadata()
        if recorded is None or self.is_empty():
            raise EmptyCollectionError(
                f"Nothing has been ingested into collection {self.name!r} yet.",
                "Run: qa ingest PATH",
            )
        return recorded

    def _chunks(self) -> Any:
        # Looking the collection up costs a round trip; the handle stays valid until reset.
        if self._chunk_collection is None:
            self._chunk_collection = self._call(lambda: self.client.get_collection(self.name))
        return self._chunk_collection

    def chunk_count(self) -> int:
        """How many chunks the collection holds: Chroma counts them all (0.5 s at 100,000)."""
        return self._call(lambda: self._chunks().count())

    def is_empty(self) -> bool:
        """Whether the collection holds no chunk, at the cost of reading one id."""
        return not self._call(lambda: self._chunks().get(limit=1, include=[]))["ids"]

    def _articles(self) -> Any:
        """The article records, created if missing: for writers only."""
        return self._call(lambda: self.client.get_or_create_collection(self.name + ARTICLES_SUFFIX))

    def _read_articles(self, **query: Any) -> dict[str, Any]:
        """`get` on the article records; none (and nothing created) if there are none yet."""
        records = self._existing_collection(self.name + ARTICLES_SUFFIX)
        if records is None:
            return {"ids": [], "metadatas": [], "documents": []}
        return self._call(lambda: records.get(**query))

    def _slices(self, rows: Sequence[T]) -> Iterator[Sequence[T]]:
        """`rows` in parts no larger than one Chroma call accepts."""
        if self._max_batch is None:
            self._max_batch = self._call(self.client.get_max_batch_size)
        yield from in_parts(rows, self._max_batch)

    def _call(self, operation: Any) -> Any:
        """Run a Chroma call, turning transport failures into one clear error."""
        try:
            return operation()
        except StoreError:
            raise
        # Chroma's HTTP client raises a bare Exception for any server error it has no class
        # for, so no narrower type catches them all.
        except Exception as error:
            if _is_connection_error(error):
                raise StoreUnavailableError(
                    f"Lost the connection to the Chroma server at {self.location}.",
                    "Check that `chroma run` is still running.",
                ) from error
            problem = damage_named_by(error)
            if problem and self.lock_path is not None:
                path = Path(self.location)
                raise damaged(path, path / DATABASE, problem) from error
            raise StoreError(f"Chroma failed: {error}") from error


def in_parts(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive parts of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def validate_collection_name(name: str) -> None:
    if not COLLECTION_NAME.match(name):
        raise InputError(
            f"Invalid collection name {name!r}.",
            "Use 3-42 letters, digits, '-' or '_', starting and ending with a letter or digit.",
        )


def persistent_client(path: Any) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
    except Exception as error:
        problem = damage_named_by(error)
        if problem:
            raise damaged(path, path / DATABASE, problem) from error
        raise StoreError(f"Cannot open the store at {path}: {error}", "Check QA_HOME.") from error


def http_client(url: str) -> Any:
    """A client for a Chroma server; fails at once, with the URL, when it cannot be reached."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        raise InputError(
            f"Invalid Chroma URL {mask_secrets(url)!r}.", "Example: http://127.0.0.1:8000"
        )
    ssl = parsed.scheme == "https"
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if ssl else 8000),
            ssl=ssl,
            settings=ChromaSettings(anonymized_telemetry=False),
        )
        client.heartbeat()
    except Exception as error:
        raise StoreUnavailableError(
            f"Cannot reach the Chroma server at {mask_secrets(url)}.",
            "Start it with `chroma run --path DIR --port PORT`, or unset QA_CHROMA_URL "
            "to use the embedded store.",
        ) from error
    return client


def article_metadata(article: Article, chunks: int, written_at: int) -> dict[str, Any]:
    meta = {
        "written_at": written_at,
        "title": article.title,
        "date": article.date,
        "source": article.source,
        "url": article.url,
        "path": article.path,
        "hash": article.hash,
        "chunks": chunks,
        **{EXTRA_PREFIX + key: value for key, value in article.extra.items()},
    }
    return {key: value for key, value in meta.items() if value is not None}


def records_in(found: dict[str, Any]) -> list[ArticleRecord]:
    """The records of a `get` on the article records."""
    return [
        record_from_metadata(id_, meta)
        for id_, meta in zip(found["ids"], found["metadatas"], strict=True)
    ]


def record_from_metadata(article_id: str, meta: dict[str, Any]) -> ArticleRecord:
    return ArticleRecord(
        id=article_id,
        title=meta.get("title", article_id),
        date=meta.get("date"),
        source=meta.get("source"),
        url=meta.get("url"),
        hash=meta["hash"],
        chunks=int(meta.get("chunks", 0)),
        written_at=meta.get("written_at"),
    )


def in_date_range(day: str | None, low: int | None, high: int | None) -> bool:
    """Whether an article of this date passes inclusive `date_number` bounds; an undated one
    passes none, as in Chroma's filter."""
    if day is None:
        return False
    number = date_number(day)
    return (low is None or number >= low) and (high is None or number <= high)


def date_number(iso_date: str) -> int:
    """`2017-08-06` -> 20170806, so Chroma can compare dates with $lte."""
    return int(iso_date.replace("-", "")[:8])


def _is_connection_error(error: Exception) -> bool:
    """A refused, reset or dropped connection to the server, here or where the error began."""
    import httpx

    return any(
        isinstance(cause, httpx.TransportError)
        for cause in (error, error.__cause__, error.__context__)
    )
