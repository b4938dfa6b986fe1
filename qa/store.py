"""Chroma store: chunk vectors plus one record per article, embedded or on a server."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from qa.chunking import Chunk, ChunkSettings
from qa.errors import (
    EmptyCollectionError,
    InputError,
    ModelMismatchError,
    StoreError,
    StoreUnavailableError,
)
from qa.loading import Article
from qa.settings import Settings

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,40}[A-Za-z0-9]$")
ARTICLES_SUFFIX = "__articles"
# Article records hold full texts for quoting; Chroma wants a vector for every record,
# and these are never searched, so each gets the same one-dimensional placeholder.
ARTICLE_VECTOR = [1.0]
EXTRA_PREFIX = "x_"


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


@dataclass(frozen=True)
class ChunkHit:
    """A chunk returned by a vector query, closest first."""

    chunk_id: str
    text: str
    metadata: dict[str, Any]
    distance: float


class Store:
    """One named collection (and its article records) in an embedded or remote Chroma."""

    def __init__(self, client: Any, name: str, location: str) -> None:
        self.client = client
        self.name = name
        self.location = location

    @classmethod
    def open(cls, settings: Settings, create: bool = True) -> "Store":
        """Connect to the store the settings name; `create=False` never creates a directory."""
        validate_collection_name(settings.collection)
        if settings.chroma_url:
            return cls(http_client(settings.chroma_url), settings.collection, settings.chroma_url)
        path = settings.data_dir / "chroma"
        if not create and not path.exists():
            raise EmptyCollectionError(
                f"Nothing has been ingested into collection {settings.collection!r} yet "
                f"(no store at {path}).",
                "Run: qa ingest PATH",
            )
        return cls(persistent_client(path), settings.collection, str(path))

    def prepare(self, embedding_model: str, chunking: ChunkSettings) -> None:
        """Create the collection for this model and chunking, or check it was built with them."""
        recorded = self._metadata()
        wanted = {"embedding_model": embedding_model, **chunking.as_metadata()}
        if recorded is None:
            self.client.create_collection(
                self.name, metadata=wanted, configuration={"hnsw": {"space": "cosine"}}
            )
            self.client.get_or_create_collection(self.name + ARTICLES_SUFFIX)
            return
        self.check_embedding_model(embedding_model, recorded)
        differing = {key: recorded.get(key) for key in chunking.as_metadata()} != (
            chunking.as_metadata()
        )
        if differing:
            raise ModelMismatchError(
                f"Collection {self.name!r} was chunked with size {recorded.get('chunk_size')}, "
                f"overlap {recorded.get('chunk_overlap')}; this ingest asks for size "
                f"{chunking.size}, overlap {chunking.overlap}.",
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
        records = self._call(lambda: self._articles().get(include=["metadatas"]))
        return {
            id_: meta["hash"]
            for id_, meta in zip(records["ids"], records["metadatas"], strict=True)
        }

    def write_article(
        self, article: Article, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Add the article's new chunks, then point its record at them, then drop old chunks.

        Chunk ids carry the content hash, so until the last step the old version stays whole.
        """
        chunk_collection = self._chunks()
        self._call(
            lambda: chunk_collection.upsert(
                ids=[chunk.id for chunk in chunks],
                embeddings=[list(vector) for vector in vectors],
                documents=[chunk.text for chunk in chunks],
                metadatas=[chunk_metadata(article, chunk) for chunk in chunks],
            )
        )
        self._call(
            lambda: self._articles().upsert(
                ids=[article.id],
                embeddings=[ARTICLE_VECTOR],
                documents=[article.text],
                metadatas=[article_metadata(article, len(chunks))],
            )
        )
        self._call(
            lambda: chunk_collection.delete(
                where={
                    "$and": [{"article_id": article.id}, {"article_hash": {"$ne": article.hash}}]
                }
            )
        )

    def query(
        self, vector: Sequence[float], k: int, as_of: str | None = None, since: str | None = None
    ) -> list[ChunkHit]:
        """The `k` chunks nearest to `vector`, optionally only from articles dated in a range.

        `since` and `as_of` are inclusive YYYY-MM-DD bounds; either may be left out.
        """
        bounds = [
            {"date_number": {operator: date_number(day)}}
            for operator, day in (("$gte", since), ("$lte", as_of))
            if day
        ]
        where = {"$and": bounds} if len(bounds) == 2 else (bounds[0] if bounds else None)
        result = self._call(
            lambda: self._chunks().query(
                query_embeddings=[list(vector)],
                n_results=k,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        )
        return [
            ChunkHit(id_, doc, meta, dist)
            for id_, doc, meta, dist in zip(
                result["ids"][0],
                result["documents"][0],
                result["metadatas"][0],
                result["distances"][0],
                strict=True,
            )
        ]

    def articles(self) -> list[ArticleRecord]:
        """Every ingested article, newest first."""
        records = self._call(lambda: self._articles().get(include=["metadatas"]))
        items = [
            record_from_metadata(id_, meta)
            for id_, meta in zip(records["ids"], records["metadatas"], strict=True)
        ]
        return sorted(items, key=lambda item: (item.date or "", item.id), reverse=True)

    def article(self, article_id: str) -> Article:
        """The full article as ingested (the text all offsets point into)."""
        found = self._call(
            lambda: self._articles().get(ids=[article_id], include=["documents", "metadatas"])
        )
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
        for name in (self.name, self.name + ARTICLES_SUFFIX):
            self._call(lambda name=name: self.client.delete_collection(name))
        return held

    def _metadata(self) -> dict[str, Any] | None:
        """Collection metadata, or None when the collection does not exist."""
        from chromadb.errors import NotFoundError

        try:
            collection = self._call(lambda: self.client.get_collection(self.name))
        except StoreError as error:
            if isinstance(error.__cause__, NotFoundError):
                return None
            raise
        return dict(collection.metadata or {})

    def _require_metadata(self) -> dict[str, Any]:
        recorded = self._metadata()
        if recorded is None or self._call(lambda: self._chunks().count()) == 0:
            raise EmptyCollectionError(
                f"Nothing has been ingested into collection {self.name!r} yet.",
                "Run: qa ingest PATH",
            )
        return recorded

    def _chunks(self) -> Any:
        return self._call(lambda: self.client.get_collection(self.name))

    def _articles(self) -> Any:
        return self._call(lambda: self.client.get_or_create_collection(self.name + ARTICLES_SUFFIX))

    def _call(self, operation: Any) -> Any:
        """Run a Chroma call, turning transport failures into one clear error."""
        try:
            return operation()
        except StoreError:
            raise
        except Exception as error:
            if _is_connection_error(error):
                raise StoreUnavailableError(
                    f"Lost the connection to the Chroma server at {self.location}.",
                    "Check that `chroma run` is still running.",
                ) from error
            raise StoreError(f"Chroma failed: {error}") from error


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
        raise StoreError(f"Cannot open the store at {path}: {error}", "Check QA_HOME.") from error


def http_client(url: str) -> Any:
    """A client for a Chroma server; fails at once, with the URL, when it cannot be reached."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        raise InputError(f"Invalid Chroma URL {url!r}.", "Example: http://127.0.0.1:8000")
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
            f"Cannot reach the Chroma server at {url}.",
            "Start it with `chroma run --path DIR --port PORT`, or unset QA_CHROMA_URL "
            "to use the embedded store.",
        ) from error
    return client


def chunk_metadata(article: Article, chunk: Chunk) -> dict[str, Any]:
    meta = {
        "article_id": article.id,
        "article_hash": article.hash,
        "title": article.title,
        "date": article.date,
        "date_number": date_number(article.date) if article.date else None,
        "source": article.source,
        "url": article.url,
        "start": chunk.start,
        "end": chunk.end,
        "index": chunk.index,
    }
    return {key: value for key, value in meta.items() if value is not None}


def article_metadata(article: Article, chunks: int) -> dict[str, Any]:
    meta = {
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


def record_from_metadata(article_id: str, meta: dict[str, Any]) -> ArticleRecord:
    return ArticleRecord(
        id=article_id,
        title=meta.get("title", article_id),
        date=meta.get("date"),
        source=meta.get("source"),
        url=meta.get("url"),
        hash=meta["hash"],
        chunks=int(meta.get("chunks", 0)),
    )


def date_number(iso_date: str) -> int:
    """`2017-08-06` -> 20170806, so Chroma can compare dates with $lte."""
    return int(iso_date.replace("-", "")[:8])


def _is_connection_error(error: Exception) -> bool:
    names = {type(e).__name__ for e in (error, error.__cause__, error.__context__) if e}
    return bool(names & {"ConnectError", "ConnectTimeout", "RemoteProtocolError", "ReadError"})
