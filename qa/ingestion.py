"""Bring articles into the store: load, skip what is unchanged, chunk, embed, write."""

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.chunking import Chunk, ChunkSettings, chunk_article
from qa.embeddings import Embedder
from qa.errors import InputError
from qa.keyword_index import KeywordIndex
from qa.loading import (
    DEFAULT_MAX_ARTICLE_MB,
    Article,
    LoadResult,
    Note,
    Skipped,
    load_articles,
)
from qa.store import Store
from qa.web import FetchSettings, check_urls, is_url
from qa.writer import Writer

# Articles are embedded in groups of about this many chunks: large enough batches for
# the model, small enough that a failure loses little work.
EMBED_GROUP_CHUNKS = 256

ProgressCallback = Callable[[int, int], None]


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
) -> IngestReport:
    """Ingest every article in `sources` (files, folders, page and feed URLs); re-ingesting
    unchanged articles embeds nothing."""
    started = time.perf_counter()
    sources = list(sources)
    urls = [source for source in sources if isinstance(source, str) and is_url(source)]
    paths = [Path(source) for source in sources if source not in urls]
    check_urls(urls)
    with store.writing():
        # Settings that do not fit the collection fail now, not after every page is fetched.
        store.check_compatible(embedder.name, chunking)
        loaded = gather(paths, urls, max_article_mb, fetching, fetch_progress)
        report = IngestReport(skipped=loaded.skipped, notes=loaded.notes)
        if not loaded.articles:
            where = ", ".join(str(source) for source in sources)
            raise NoArticlesError(f"No readable articles in {where}.", loaded.skipped, bool(urls))
        _write_new_and_changed(loaded.articles, report, store, embedder, chunking, progress)
    report.seconds = time.perf_counter() - started
    return report


def gather(
    paths: list[Path],
    urls: list[str],
    max_article_mb: float,
    fetching: FetchSettings | None,
    fetch_progress: ProgressCallback | None,
) -> LoadResult:
    """Articles from the files and folders, then from the URLs, with one id space for both."""
    loaded = load_articles(paths, max_article_mb)
    if urls:
        from qa.web import fetch_articles

        fetched = fetch_articles(urls, fetching or FetchSettings(), max_article_mb, fetch_progress)
        loaded.extend(fetched)
    return loaded


def _write_new_and_changed(
    articles: list[Article],
    report: IngestReport,
    store: Store,
    embedder: Embedder,
    chunking: ChunkSettings,
    progress: ProgressCallback | None,
) -> None:
    """Embed and write every article whose content the store does not hold yet."""
    store.prepare(embedder.name, chunking)
    writer = Writer(store, KeywordIndex.open(store.cache_dir))
    writer.start()
    known = store.current_versions([article.id for article in articles])
    pending = []
    for article in articles:
        if known.get(article.id) == article.hash:
            report.unchanged.append(article.id)
        else:
            pending.append((article, chunk_article(article, chunking)))
    total = sum(len(chunks) for _, chunks in pending)
    done = 0

    def embedded(count: int) -> None:
        # Called per model batch, so a single huge article shows progress as well.
        nonlocal done
        done += count
        if progress:
            progress(done, total)

    embedded(0)
    # Chroma writes one group while the model embeds the next; `pending_write` is waited for
    # before the next write, so writes stay in order and a failure stops the ingest.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending_write: Future | None = None
        for group in _groups(pending):
            texts = [chunking.embedding_text(a, chunk) for a, chunks in group for chunk in chunks]
            vectors = embedder.embed_documents(texts, progress=embedded)
            batch = []
            for article, chunks in group:
                batch.append((article, chunks, vectors[: len(chunks)]))
                vectors = vectors[len(chunks) :]
            if pending_write is not None:
                pending_write.result()
            pending_write = pool.submit(writer.write, batch)
            for article, chunks in group:
                (report.updated if article.id in known else report.added).append(article.id)
                report.chunks_embedded += len(chunks)
        if pending_write is not None:
            pending_write.result()
    writer.finish()


def _groups(
    pending: list[tuple[Article, list[Chunk]]],
) -> Iterable[list[tuple[Article, list[Chunk]]]]:
    group: list[tuple[Article, list[Chunk]]] = []
    size = 0
    for item in pending:
        group.append(item)
        size += len(item[1])
        if size >= EMBED_GROUP_CHUNKS:
            yield group
            group, size = [], 0
    if group:
        yield group
