"""Bring articles into the store: load, skip what is unchanged, chunk, embed, write."""

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from qa.chunking import Chunk, ChunkSettings, chunk_article
from qa.embeddings import Embedder
from qa.errors import InputError
from qa.keyword_index import refresh_keyword_index
from qa.loading import DEFAULT_MAX_ARTICLE_MB, Article, Note, Skipped, load_articles
from qa.store import Store

# Articles are embedded in groups of about this many chunks: large enough batches for
# the model, small enough that a failure loses little work.
EMBED_GROUP_CHUNKS = 256

ProgressCallback = Callable[[int, int], None]


class NoArticlesError(InputError):
    """Nothing readable was found; `skipped` says why for each file."""

    def __init__(self, message: str, skipped: list[Skipped]) -> None:
        super().__init__(message, "Supported: .txt, .md, .html, .json, .jsonl.")
        self.skipped = skipped


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


def ingest(
    paths: Iterable[Path],
    store: Store,
    embedder: Embedder,
    chunking: ChunkSettings,
    progress: ProgressCallback | None = None,
    max_article_mb: float = DEFAULT_MAX_ARTICLE_MB,
) -> IngestReport:
    """Ingest every article under `paths`; re-ingesting unchanged articles embeds nothing."""
    started = time.perf_counter()
    paths = list(paths)
    loaded = load_articles(paths, max_article_mb)
    report = IngestReport(skipped=loaded.skipped, notes=loaded.notes)
    if not loaded.articles:
        where = ", ".join(str(path) for path in paths)
        raise NoArticlesError(f"No readable articles in {where}.", loaded.skipped)
    with store.writing():
        _write_new_and_changed(loaded.articles, report, store, embedder, chunking, progress)
    report.seconds = time.perf_counter() - started
    return report


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
    records = store.articles()
    if store.needs_repair(records):
        store.repair()
        records = store.articles()
    known = {record.id: record.hash for record in records}
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
    with store.unfinished_writes(), ThreadPoolExecutor(max_workers=1) as writer:
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
            pending_write = writer.submit(store.write_articles, batch)
            for article, chunks in group:
                (report.updated if article.id in known else report.added).append(article.id)
                report.chunks_embedded += len(chunks)
        if pending_write is not None:
            pending_write.result()
    # Built now, so the first question after an ingest does not wait for it.
    refresh_keyword_index(store)


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
