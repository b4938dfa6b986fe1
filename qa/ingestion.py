"""Bring articles into the store: load, skip what is unchanged, chunk, embed, write."""

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.chunking import Chunk, ChunkSettings, chunk_article, embedding_text
from qa.crawl import Crawl
from qa.embeddings import Embedder
from qa.errors import InputError
from qa.keyword_index import KeywordIndex
from qa.loading import (
    DEFAULT_MAX_ARTICLE_MB,
    Article,
    IdSpace,
    Note,
    Skipped,
    Unchanged,
    stream_articles,
)
from qa.store import Store
from qa.types import ProgressCallback
from qa.web import FetchSettings, check_urls, is_url
from qa.writer import Writer

# Articles are embedded in groups of at most this many chunks (unless one article has more):
# large enough batches for the model, small enough that a failure loses little work.
EMBED_GROUP_CHUNKS = 256
# Articles whose recorded versions are asked for in one store call.
LOOKUP_GROUP_ARTICLES = 64


class NoArticlesError(InputError):
    """Nothing readable was found; `skipped` says why for each file or URL.

    With URLs among the sources the run failed rather than the input being wrong (exit 1).
    """

    def __init__(self, message: str, skipped: list[Skipped], fetched: bool = False) -> None:
        hint = "" if fetched else "Supported: .txt, .md, .html, .json, .jsonl, page and feed URLs."
        super().__init__(message, hint)
        self.skipped = skipped
        if fetched:
            self.exit_code = 1


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        """The `qa ingest --json` object, also kept in eval reports."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": [{"location": s.location, "reason": s.reason} for s in self.skipped],
            "notes": [{"location": n.location, "message": n.message} for n in self.notes],
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
        }


def ingest(
    sources: Iterable[Path | str],
    store: Store,
    embedder: Embedder,
    chunking: ChunkSettings,
    progress: ProgressCallback | None = None,
    max_article_mb: float = DEFAULT_MAX_ARTICLE_MB,
    fetching: FetchSettings | None = None,
    fetch_progress: ProgressCallback | None = None,
    crawl: Crawl | None = None,
) -> IngestReport:
    """Ingest every article in `sources` (files, folders, page and feed URLs); re-ingesting
    unchanged articles embeds nothing.

    Articles are read, chunked, embedded and written a batch at a time, so memory does not
    grow with the size of the input. URLs are fetched by `crawl` (by default one made from
    `fetching`), which asks only for what changed since the runs it remembers.
    """
    started = time.perf_counter()
    sources = list(sources)
    urls = [source for source in sources if isinstance(source, str) and is_url(source)]
    paths = [Path(source) for source in sources if source not in urls]
    check_urls(urls)
    report = IngestReport()
    crawl = crawl or Crawl(fetching or FetchSettings())
    with store.writing(), crawl.remembering(store.current_versions):
        # Settings that do not fit the collection fail now, not after every page is fetched.
        store.check_compatible(embedder.name, chunking)
        items = gather(paths, urls, max_article_mb, crawl, fetch_progress)
        pipeline = Pipeline(store, embedder, chunking, report, progress)
        try:
            for item in items:
                if isinstance(item, Skipped):
                    report.skipped.append(item)
                elif isinstance(item, Note):
                    report.notes.append(item)
                elif isinstance(item, Unchanged):
                    report.unchanged.append(item.article_id)
                else:
                    pipeline.take(item)
        except BaseException:
            # The write under way finishes; what it left unrecorded, the next writer removes.
            pipeline.pool.shutdown(wait=True, cancel_futures=True)
            pipeline.close_index()
            raise
        pipeline.close()
        if not pipeline.articles_seen and not report.unchanged:
            where = ", ".join(str(source) for source in sources)
            raise NoArticlesError(f"No readable articles in {where}.", report.skipped, bool(urls))
    report.seconds = time.perf_counter() - started
    return report


def gather(
    paths: list[Path],
    urls: list[str],
    max_article_mb: float,
    crawl: Crawl,
    fetch_progress: ProgressCallback | None,
) -> Iterator[Article | Skipped | Note | Unchanged]:
    """Articles from the files and folders, then from the URLs, with one id space for both."""
    ids = IdSpace()
    yield from stream_articles(paths, max_article_mb, ids)
    if urls:
        for item in crawl.articles(urls, max_article_mb, fetch_progress):
            yield ids.checked(item, item.path or item.id) if isinstance(item, Article) else item


class Pipeline:
    """Articles in, in order: the unchanged ones counted, the others chunked, embedded and
    written a group at a time, the model embedding one group while Chroma writes the last."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        chunking: ChunkSettings,
        report: IngestReport,
        progress: ProgressCallback | None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunking = chunking
        self.report = report
        self.progress = progress
        self.articles_seen = False
        self.looked_up: list[Article] = []
        self.pending: list[tuple[Article, list[Chunk]]] = []
        self.pending_chunks = 0
        # An embedder with requests in flight says how many texts keep every request busy.
        self.group_chunks = max(EMBED_GROUP_CHUNKS, getattr(embedder, "texts_in_flight", 0))
        self.known: set[str] = set()
        self.total = self.done = 0
        self.writer: Writer | None = None
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending_write: Future | None = None

    def take(self, article: Article) -> None:
        if not self.articles_seen:
            self.articles_seen = True
            # Created with the first article, so a run that finds none creates nothing.
            self.store.prepare(self.embedder.name, self.chunking)
            self.writer = Writer(self.store, KeywordIndex.open(self.store.cache_dir))
            self.writer.start()
        self.looked_up.append(article)
        if len(self.looked_up) >= LOOKUP_GROUP_ARTICLES:
            self._sort_looked_up()

    def close(self) -> None:
        """Write what is left, and wait for every write."""
        try:
            self._sort_looked_up()
            if self.pending:
                self._embed_and_write()
            if self.pending_write is not None:
                self.pending_write.result()
        finally:
            self.pool.shutdown(wait=True)
        if self.writer is not None:
            try:
                self.writer.finish()
            finally:
                self.close_index()

    def close_index(self) -> None:
        """Close the keyword index now, not whenever it is collected: its last connection
        closing folds SQLite's log into its file, which readers then find whole."""
        if self.writer is not None:
            self.writer.index.close()

    def _sort_looked_up(self) -> None:
        """Unchanged and whole articles are counted; the others wait to be embedded."""
        if not self.looked_up:
            return
        whole = self._whole_versions([article.id for article in self.looked_up])
        for article in self.looked_up:
            if whole.get(article.id) == article.hash:
                self.report.unchanged.append(article.id)
                continue
            chunks = chunk_article(article, self.chunking)
            if self.pending and self.pending_chunks + len(chunks) > self.group_chunks:
                # A few chunks past a full group would cost a server one more round of
                # requests, as long as a whole one.
                self._embed_and_write()
            self.pending.append((article, chunks))
            self.pending_chunks += len(chunks)
            self.total += len(chunks)
            self._embedded(0)
            if self.pending_chunks >= self.group_chunks:
                self._embed_and_write()
        self.looked_up = []

    def _whole_versions(self, article_ids: list[str]) -> dict[str, str]:
        """The recorded version of each of these articles whose chunks are all in the store.

        A recorded article missing chunks (lost to a fault outside qa) is written again.
        """
        records = self.store.records_of(article_ids)
        self.known.update(records)
        held = Counter(
            (article_id, version)
            for _, article_id, version in self.store.chunk_versions(list(records))
        )
        return {
            id_: record.hash
            for id_, record in records.items()
            if held[(id_, record.hash)] == record.chunks
        }

    def _embed_and_write(self) -> None:
        group, self.pending, self.pending_chunks = self.pending, [], 0
        texts = [embedding_text(self.chunking, a, chunk) for a, chunks in group for chunk in chunks]
        vectors = self.embedder.embed_documents(texts, progress=self._embedded)
        batch = []
        for article, chunks in group:
            batch.append((article, chunks, vectors[: len(chunks)]))
            vectors = vectors[len(chunks) :]
        # Writes stay in order, and a failed one stops the ingest before the next.
        if self.pending_write is not None:
            self.pending_write.result()
        assert self.writer is not None
        self.pending_write = self.pool.submit(self.writer.write, batch)
        for article, chunks in group:
            (self.report.updated if article.id in self.known else self.report.added).append(
                article.id
            )
            self.report.chunks_embedded += len(chunks)

    def _embedded(self, count: int) -> None:
        # Called per model batch, so a single huge article shows progress as well; the total
        # grows as the input is read.
        self.done += count
        if self.progress:
            self.progress(self.done, self.total)
