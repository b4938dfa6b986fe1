"""The chunk collection: each chunk's vector and text, and where it sits in its article."""

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qa.chroma_gateway import ChromaGateway, in_pages, in_parts
from qa.chunking import Chunk
from qa.loading import Article

# A date-filtered search first looks this many times as far without the filter.
UNFILTERED_SEARCH_FACTOR = 2
# Articles named in one `where` filter when reading their chunks.
ARTICLES_PER_READ = 100

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
        # Built by hand: `asdict` deep-copies every field, a tenth of a write's CPU.
        meta = {
            "article_id": self.article_id,
            "article_hash": self.article_hash,
            "title": self.title,
            "date": self.date,
            "source": self.source,
            "url": self.url,
            "start": self.start,
            "end": self.end,
            "index": self.index,
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


class ChunkCollection:
    """The chunks of every article version written, recorded or not (see qa.writer)."""

    def __init__(self, chroma: ChromaGateway, name: str) -> None:
        self.chroma = chroma
        self.name = name
        self._collection: Any = None

    def put(self, batch: Sequence[ArticleChunks]) -> None:
        """Write these articles' chunks and vectors (readers ignore them until recorded)."""
        import numpy as np

        rows = [
            (chunk.id, vector, chunk.text, meta.to_chroma())
            for article, chunks, vectors in batch
            for chunk, vector, meta in zip(
                chunks, vectors, ChunkMeta.all_of(article, chunks), strict=True
            )
        ]
        for part in self.chroma.batches(rows):
            ids, vectors, documents, metadatas = (
                list(column) for column in zip(*part, strict=True)
            )
            collection = self.collection()
            with self.chroma.calls():
                # Chroma keeps 32-bit floats and makes an array of each vector it is given
                # as a list: one array for the whole part is the same numbers, made at once.
                embeddings = np.asarray(vectors, dtype=np.float32)
                collection.upsert(
                    ids=ids, embeddings=embeddings, documents=documents, metadatas=metadatas
                )

    def keep_only(self, keep: dict[str, Collection[str]]) -> int:
        """Delete the chunks of these articles that are of none of the versions given (an
        empty collection: every chunk of that article); returns how many went."""
        stale = [
            chunk_id
            for chunk_id, article_id, article_hash in self.versions(list(keep))
            if article_hash not in keep[article_id]
        ]
        for part in self.chroma.batches(stale):
            collection = self.collection()
            with self.chroma.calls():
                collection.delete(ids=list(part))
        return len(stale)

    def versions(self, article_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
        """(chunk id, article id, content hash) of every chunk of these articles."""
        return [
            (id_, meta["article_id"], meta.get("article_hash"))
            for page in self._pages_of(article_ids, ["metadatas"])
            for id_, meta in zip(page["ids"], page["metadatas"], strict=True)
        ]

    def indexed_of(self, versions: dict[str, str]) -> list[IndexedChunk]:
        """The chunks of these article versions, as the keyword index sees them."""
        return [
            IndexedChunk.of(id_, text, meta)
            for page in self._pages_of(list(versions), ["documents", "metadatas"])
            for id_, text, meta in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            )
            if versions[meta["article_id"]] == meta.get("article_hash")
        ]

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

    def ids(self) -> list[str]:
        """The id of every chunk in the collection."""
        return [id_ for page in self._pages([]) for id_ in page["ids"]]

    def indexed(self) -> Iterator[IndexedChunk]:
        """Every chunk as the keyword index sees it: title and text, and its date."""
        for page in self._pages(["documents", "metadatas"]):
            for id_, text, meta in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            ):
                yield IndexedChunk.of(id_, text, meta)

    def get(self, chunk_ids: Sequence[str]) -> list[ChunkHit]:
        """The chunks with these ids, with their vectors, in the order asked."""
        if not chunk_ids:
            return []
        collection = self.collection()
        with self.chroma.calls():
            found = collection.get(
                ids=list(chunk_ids), include=["documents", "metadatas", "embeddings"]
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

    def count(self) -> int:
        """How many chunks the collection holds: Chroma counts them all (0.5 s at 100,000)."""
        collection = self.collection()
        with self.chroma.calls():
            return collection.count()

    def is_empty(self) -> bool:
        """Whether the collection holds no chunk, at the cost of reading one id."""
        collection = self.collection()
        with self.chroma.calls():
            return not collection.get(limit=1, include=[])["ids"]

    def collection(self) -> Any:
        """Chroma's handle on the collection."""
        # Looking the collection up costs a round trip; the handle stays valid until a reset.
        if self._collection is None:
            self._collection = self.chroma.get_collection(self.name)
        return self._collection

    def forget(self) -> None:
        """Drop the handle: the collection was deleted."""
        self._collection = None

    def _nearest(
        self, vector: Sequence[float], k: int, where: dict[str, Any] | None
    ) -> list[ChunkHit]:
        collection = self.collection()
        with self.chroma.calls():
            result = collection.query(
                query_embeddings=[[float(x) for x in vector]],
                n_results=k,
                where=where,
                include=["documents", "metadatas", "distances"],
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

    def _pages(self, include: list[str]) -> Iterator[dict[str, Any]]:
        """The whole chunk collection, a page at a time."""
        collection = self.collection()

        def get(**query: Any) -> dict[str, Any]:
            with self.chroma.calls():
                return collection.get(**query)

        yield from in_pages(get, include=include)

    def _pages_of(self, article_ids: Sequence[str], include: list[str]) -> Iterator[dict]:
        """The chunks of these articles, a `get` for every ARTICLES_PER_READ of them."""
        for part in in_parts(article_ids, ARTICLES_PER_READ):
            collection = self.collection()
            with self.chroma.calls():
                page = collection.get(where={"article_id": {"$in": list(part)}}, include=include)
            yield page


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
