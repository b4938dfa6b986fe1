"""Find the passages most related to a question: meaning and keywords, fused, one per story."""

import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import date

import numpy as np

from qa.embeddings import Embedder, get_embedder
from qa.keyword_index import CATCH_UP_EVERY_SECONDS, KeywordIndex, catch_up
from qa.settings import Settings
from qa.store import ChunkHit, Store
from qa.types import Copy, Passage
from qa.words import words

# Share of the keyword (BM25) score in the hybrid ranking; the rest is meaning (cosine
# similarity). Each is scaled to 0..1 over the candidates first. Chosen on the dev halves of
# both benchmarks (SQuAD 2.0 and RealTime QA), where 0.7 was at or near the best of 0.5-0.8;
# reciprocal-rank fusion ranked the evidence first less often on both.
KEYWORD_SHARE = {"hybrid": 0.7, "dense": 0.0, "keyword": 1.0}
# With a question's date (`as_of`), newer articles rank a little higher: news questions are
# mostly about the last days. Weight and half-life in days, from the RealTime QA dev half.
RECENCY_WEIGHT = 0.2
RECENCY_DAYS = 14.0
# Each further passage of an article already ranked loses this much of its blended score (on
# the scale above, where the best candidate scores about 1), so a long article whose every
# chunk shares the question's words does not fill the top k on its own when another article
# scores nearly as well. Chosen on both dev halves: 0.05-0.1 lifted RealTime QA's gold-article
# hit@5 without moving evidence or answer hits on either set; 0.15 and more cost evidence.
SAME_ARTICLE_PENALTY = 0.075
# Each side offers this many candidates per passage asked for, so ranking and the removal of
# duplicate stories still leave k passages.
CANDIDATES_PER_PASSAGE = 4
MIN_CANDIDATES = 20
# Two passages of different articles are copies of one story when this share of the shorter
# one's word 5-grams appear in the other (wire stories re-run under new ids and headlines).
DUPLICATE_CONTAINMENT = 0.6
SHINGLE = 5


class Retriever:
    """Dense search in Chroma and BM25 over the same chunks, their scores blended."""

    def __init__(self, store: Store, embedder: Embedder, mode: str = "hybrid") -> None:
        self._store = store
        self.embedder = embedder
        self.mode = mode
        self._index: KeywordIndex | None = None
        # Whether the collection was found to hold this embedding model's vectors; until it
        # is, `store` checks (see `open`).
        self._checked = True
        self._checking: Future[None] | None = None
        self._searching = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dense-search")
        # When it last looked for others' new vectors (`_vectors_up_to_date`).
        self._vectors_checked_at = time.monotonic()

    @property
    def store(self) -> Store:
        """The store searched, once found to hold this model's vectors."""
        if not self._checked:
            checking, self._checking = self._checking, None
            if checking is not None:
                checking.result()
            else:
                self._store.check_embedding_model(self.embedder.name)
            self._checked = True
        return self._store

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> "Retriever":
        """Search the collection `settings` names, with the embedding model it was built with
        (`embedder`, when one is open already)."""
        # Asking writes no derived file: a model graph not cached yet is built in memory.
        embedder = embedder or get_embedder(settings, keep_files=False)
        # The model loads in native code, free of the interpreter lock, while Chroma is
        # imported and opened and the caller goes on: a cold `qa ask` waits for the longest.
        embedder.warm_up()
        store = Store.open(settings, create=False, reading=True)
        retriever = cls(store, embedder, settings.retrieval)
        # The check's first read makes embedded Chroma load the collection's vector index
        # (0.3 s at 100,000 chunks), also outside the lock: the caller goes on meanwhile, and
        # the first use of `store` waits for it.
        pool = ThreadPoolExecutor(max_workers=1)
        retriever._checked = False
        retriever._checking = pool.submit(store.check_embedding_model, embedder.name)
        pool.shutdown(wait=False)
        return retriever

    def retrieve(
        self, question: str, k: int, as_of: str | None = None, since: str | None = None
    ) -> list[Passage]:
        """The `k` passages that best match `question`, best first, one per story."""
        wanted = max(k * CANDIDATES_PER_PASSAGE, MIN_CANDIDATES)
        # Found to hold this model's vectors before the question is embedded by it.
        store = self.store
        if self.mode != "keyword":
            self._vectors_up_to_date(store)
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        if self.mode != "dense":
            # Its catch-up reads the store before the dense query goes out: one call at a time.
            self.keyword_index()
        dense = None
        if self.mode != "keyword":
            # Chroma searches (on a server, or in its core, free of the interpreter lock) while
            # the keyword side searches here.
            dense = self._searching.submit(store.query, query, wanted, as_of=as_of, since=since)
        hits: dict[str, ChunkHit] = {}

        def with_dense() -> list[str]:
            if dense is not None:
                hits.update((hit.chunk_id, hit) for hit in dense.result())
            return list(hits)

        keyword: dict[str, float] | None = None
        if self.mode != "dense":
            keyword = self.keyword_scores(question, wanted, with_dense, as_of, since)
        with_dense()
        if keyword is not None:
            missing = [chunk_id for chunk_id in keyword if chunk_id not in hits]
            hits.update((hit.chunk_id, hit) for hit in store.chunks(missing))
        ordered = self._ranked(query, self.current(list(hits.values())), as_of, keyword)
        return [
            replace(passage, rank=rank)
            for rank, passage in enumerate(one_per_story(ordered, query, k), start=1)
        ]

    def _ranked(
        self,
        query: np.ndarray,
        hits: list[ChunkHit],
        as_of: str | None,
        keyword: dict[str, float] | None,
    ) -> list[ChunkHit]:
        """`hits` best first: keyword and meaning scores, each scaled over the candidates."""
        if not hits:
            return []
        share = KEYWORD_SHARE[self.mode]
        blended = np.zeros(len(hits))
        if keyword is not None and share > 0:
            bm25 = np.array([keyword.get(hit.chunk_id, 0.0) for hit in hits])
            blended += share * scaled(bm25)
        if share < 1:
            dense = np.array([similarity(hit, query) for hit in hits])
            blended += (1 - share) * scaled(dense - dense.min())
        if as_of:
            blended += RECENCY_WEIGHT * np.array([recency(hit, as_of) for hit in hits])
        return diversified(hits, blended)

    def current(self, hits: list[ChunkHit]) -> list[ChunkHit]:
        """Only chunks of the article version on record.

        An ingest killed midway can leave chunks whose record was never written, or an old
        version's chunks not yet dropped; their offsets may not match the article text a
        citation is checked against, so they are never offered until the next ingest removes
        them.
        """
        versions = self.store.current_versions([hit.meta.article_id for hit in hits])
        return [hit for hit in hits if versions.get(hit.meta.article_id) == hit.meta.article_hash]

    def keyword_scores(
        self,
        question: str,
        wanted: int,
        dense: Callable[[], Sequence[str]],
        as_of: str | None,
        since: str | None,
    ) -> dict[str, float]:
        """BM25 scores of the `wanted` best keyword matches (in the date range), and of the
        dense candidates that share a term with the question (`dense()`, asked once the
        best are found)."""

        index = self.keyword_index()
        try:
            return index.best_and_scores(question, wanted, dense, as_of, since)
        except sqlite3.DatabaseError:
            # Damaged on disk after it was opened: built again from the store, in memory, once,
            # when the dense query is back (the store answers one call at a time).
            dense()
            index.close()
            self._index = KeywordIndex.in_memory()
            return self.keyword_index().best_and_scores(question, wanted, dense, as_of, since)

    def _vectors_up_to_date(self, store: Store) -> None:
        """A long-lived process (chat, the MCP server) searches, by meaning too, what other
        processes ingested since it opened the store: it looks at most every
        CATCH_UP_EVERY_SECONDS, like the keyword index's catch-up."""
        moment = time.monotonic()
        if moment - self._vectors_checked_at >= CATCH_UP_EVERY_SECONDS:
            self._vectors_checked_at = moment
            store.reopen_vectors_if_written()

    def keyword_index(self) -> KeywordIndex:
        """The BM25 index of the chunks in the store, caught up with what others wrote since.

        A catch-up reads only the article records written lately, not every chunk; reading
        never writes the index's file (see `qa.keyword_index`).
        """
        if self._index is None:
            self._index = KeywordIndex.open_for_reading(self.store.cache_dir)
        self._index = catch_up(self._index, self.store)
        return self._index


def diversified(hits: list[ChunkHit], blended: np.ndarray) -> list[ChunkHit]:
    """`hits` best first, each pick lowering the rest of its article by SAME_ARTICLE_PENALTY."""
    left = list(np.argsort(-blended, kind="stable"))
    taken: Counter[str] = Counter()
    ordered = []
    while left:
        # max() keeps the first of equals: ties stay in blended order.
        best = max(
            left, key=lambda i: blended[i] - SAME_ARTICLE_PENALTY * taken[hits[i].meta.article_id]
        )
        left.remove(best)
        ordered.append(hits[best])
        taken[hits[best].meta.article_id] += 1
    return ordered


def scaled(values: np.ndarray) -> np.ndarray:
    """`values` divided by their largest, so the best candidate scores 1."""
    top = values.max()
    return values / top if top > 0 else values


def one_per_story(hits: list[ChunkHit], query: np.ndarray, k: int) -> list[Passage]:
    """The first `k` hits, each copy of a story already taken folded into `also_in`."""
    kept: list[tuple[Passage, set[tuple[str, ...]]]] = []
    for hit in hits:
        shingles = shingles_of(hit.text)
        original = next(
            (
                i
                for i, (passage, seen) in enumerate(kept)
                if passage.article_id != hit.meta.article_id
                and containment(shingles, seen) >= DUPLICATE_CONTAINMENT
            ),
            None,
        )
        if original is not None:
            passage, seen = kept[original]
            kept[original] = (replace(passage, also_in=(*passage.also_in, copy_of(hit))), seen)
        elif len(kept) < k:
            kept.append((passage_of(hit, query), shingles))
    return [passage for passage, _ in kept]


def passage_of(hit: ChunkHit, query: np.ndarray) -> Passage:
    meta = hit.meta
    return Passage(
        rank=0,
        chunk_id=hit.chunk_id,
        article_id=meta.article_id,
        title=meta.title,
        date=meta.date,
        source=meta.source,
        url=meta.url,
        start=meta.start,
        end=meta.end,
        text=hit.text,
        score=round(similarity(hit, query), 4),
    )


def similarity(hit: ChunkHit, query: np.ndarray) -> float:
    """Cosine similarity of the chunk to the question (vectors are unit length)."""
    if hit.distance is not None:
        # Chroma's cosine distance is 1 - similarity.
        return 1.0 - hit.distance
    return float(np.dot(np.asarray(hit.vector, dtype=np.float32), query))


def recency(hit: ChunkHit, as_of: str) -> float:
    """1 for an article of the day asked about, fading with each day before it."""
    day = hit.meta.date
    if not day:
        return 0.0
    days = (date.fromisoformat(as_of) - date.fromisoformat(day[:10])).days
    return float(np.exp(-max(days, 0) / RECENCY_DAYS))


def copy_of(hit: ChunkHit) -> Copy:
    meta = hit.meta
    return Copy(meta.article_id, meta.title, meta.date, meta.url)


def shingles_of(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + SHINGLE]) for i in range(max(len(tokens) - SHINGLE + 1, 1))}


def containment(a: set, b: set) -> float:
    """Share of the smaller set found in the other."""
    smaller = min(len(a), len(b))
    return len(a & b) / smaller if smaller else 0.0
