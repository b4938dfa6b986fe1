"""Article records: one per article, its full text and the version readers answer from."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qa.chroma_gateway import PAGE_SIZE, ChromaGateway, in_pages, in_parts
from qa.chunk_collection import ArticleChunks
from qa.errors import InputError
from qa.loading import Article

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


class ArticleRecords:
    """The records of one chunk collection's articles, in a collection of their own."""

    def __init__(self, chroma: ChromaGateway, collection_name: str) -> None:
        self.chroma = chroma
        # The chunk collection's name, for messages; the records' own is `name`.
        self.collection_name = collection_name
        self.name = collection_name + ARTICLES_SUFFIX

    def create(self) -> Any:
        """The records' collection, created if missing: for writers only."""
        return self.chroma.get_or_create_collection(self.name)

    def put(self, batch: Sequence[ArticleChunks], written_at: int) -> None:
        """Record these articles' versions: from now on readers answer from them."""
        records = [
            (article.id, article.text, article_metadata(article, len(chunks), written_at))
            for article, chunks, _ in batch
        ]
        collection = self.create()
        for part in self.chroma.batches(records):
            ids, documents, metadatas = (list(column) for column in zip(*part, strict=True))
            with self.chroma.calls():
                collection.upsert(
                    ids=ids,
                    embeddings=[ARTICLE_VECTOR] * len(ids),
                    documents=documents,
                    metadatas=metadatas,
                )

    def of(self, article_ids: Sequence[str]) -> dict[str, ArticleRecord]:
        """The record of each of these articles that has one."""
        if not article_ids:
            return {}
        return {
            record.id: record
            for part in in_parts(sorted(set(article_ids)), PAGE_SIZE)
            for record in records_in(self._get(ids=list(part), include=["metadatas"]))
        }

    def written_since(self, written_at: int) -> Iterator[list[ArticleRecord]]:
        """The records written at or after `written_at` (ms since the epoch), a page at a
        time: a writer's last look covers every record of its run, however long."""
        where = {"written_at": {"$gte": written_at}}
        for page in in_pages(self._get, where=where, include=["metadatas"]):
            yield records_in(page)

    def any_written_since(self, written_at: int) -> bool:
        """Whether any record was written at or after `written_at`."""
        where = {"written_at": {"$gte": written_at}}
        return bool(self._get(where=where, include=[], limit=1)["ids"])

    def all(self) -> list[ArticleRecord]:
        """Every record, newest article first."""
        pages = in_pages(self._get, include=["metadatas"])
        items = [record for page in pages for record in records_in(page)]
        return sorted(items, key=lambda item: (item.date or "", item.id), reverse=True)

    def article(self, article_id: str) -> Article:
        """The full article as ingested (the text all offsets point into)."""
        found = self._get(ids=[article_id], include=["documents", "metadatas"])
        if not found["ids"]:
            raise InputError(
                f"No article with id {article_id!r} in collection {self.collection_name!r}."
            )
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

    def _get(self, **query: Any) -> dict[str, Any]:
        """`get` on the records; none (and nothing created) if there are none yet."""
        collection = self.chroma.collection(self.name)
        if collection is None:
            return {"ids": [], "metadatas": [], "documents": []}
        with self.chroma.calls():
            return collection.get(**query)


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
