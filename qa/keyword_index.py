"""BM25 over a collection's chunks, kept on disk beside the store and rebuilt when it drifts.

The index is derived data: Chroma holds the truth. It records a fingerprint of the chunk ids it
was built from (ids carry each article's content hash), and one that no longer matches the
store is rebuilt before it is searched, so a kill between the two writes never leaves answers
coming from a stale index. Scoring needs only numpy, which keeps a cold `qa ask` light.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.store import IndexedChunk, Store, date_number
from qa.words import STOPWORDS

# Lucene's BM25 defaults: term-frequency saturation and length normalisation.
K1 = 1.2
B = 0.75
FORMAT_VERSION = 1
TOKEN = re.compile(r"\w\w+")


class KeywordIndex:
    """Chunk ids ranked by BM25 for a question, optionally within a date range."""

    def __init__(
        self,
        chunk_ids: list[str],
        vocabulary: dict[str, int],
        postings: dict[str, np.ndarray],
        fingerprint: str,
    ) -> None:
        self.chunk_ids = chunk_ids
        self.vocabulary = vocabulary
        self.indptr = postings["indptr"]
        self.docs = postings["docs"]
        self.weights = postings["weights"]
        self.dates = postings["dates"]
        self.fingerprint = fingerprint
        self._positions: dict[str, int] | None = None

    @classmethod
    def build(cls, chunks: Iterable[IndexedChunk]) -> "KeywordIndex":
        """Score every (term, chunk) pair once, so a search only adds up a few columns."""
        chunk_ids: list[str] = []
        counts: list[Counter] = []
        dates: list[int] = []
        for chunk in chunks:
            chunk_ids.append(chunk.id)
            counts.append(Counter(tokenize(chunk.text)))
            # Undated chunks match no date bound, as in Chroma's metadata filter.
            dates.append(chunk.date_number if chunk.date_number is not None else -1)
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
        vocabulary: dict[str, int] = {}
        rows: dict[int, list[tuple[int, int]]] = {}
        for doc, count in enumerate(counts):
            for term, frequency in count.items():
                term_id = vocabulary.setdefault(term, len(vocabulary))
                rows.setdefault(term_id, []).append((doc, frequency))
        postings = _postings(rows, len(vocabulary), lengths)
        postings["dates"] = np.array(dates, dtype=np.int64)
        return cls(chunk_ids, vocabulary, postings, fingerprint_of(chunk_ids))

    def search(
        self, question: str, n: int, as_of: str | None = None, since: str | None = None
    ) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, BM25 score) pairs, best first; chunks sharing no term are out."""
        return self.best(self.scores(question), n, as_of, since)

    def best(
        self, scores: np.ndarray, n: int, as_of: str | None = None, since: str | None = None
    ) -> list[tuple[str, float]]:
        """The `n` best-scoring chunks of `scores` dated within the bounds, best first."""
        allowed = scores > 0
        if since:
            allowed &= self.dates >= date_number(since)
        if as_of:
            allowed &= (self.dates <= date_number(as_of)) & (self.dates >= 0)
        matched = np.flatnonzero(allowed)
        if len(matched) > n:
            matched = matched[np.argpartition(-scores[matched], n - 1)[:n]]
        best = matched[np.argsort(-scores[matched], kind="stable")]
        return [(self.chunk_ids[i], float(scores[i])) for i in best]

    def scores(self, question: str) -> np.ndarray:
        """The BM25 score of every chunk for `question`, in `chunk_ids` order."""
        scores = np.zeros(len(self.chunk_ids), dtype=np.float32)
        for term in set(tokenize(question)):
            term_id = self.vocabulary.get(term)
            if term_id is not None:
                start, end = self.indptr[term_id], self.indptr[term_id + 1]
                scores[self.docs[start:end]] += self.weights[start:end]
        return scores

    def score_of(self, chunk_id: str, scores: np.ndarray) -> float:
        """`chunk_id`'s entry in `scores`; 0 for a chunk written after the index was read."""
        if self._positions is None:
            self._positions = {id_: i for i, id_ in enumerate(self.chunk_ids)}
        position = self._positions.get(chunk_id)
        return float(scores[position]) if position is not None else 0.0

    def save(self, folder: Path) -> None:
        """Write to `folder` as a whole: a reader sees the old index or the new, never half."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
        np.savez(
            staging / "postings.npz",
            indptr=self.indptr,
            docs=self.docs,
            weights=self.weights,
            dates=self.dates,
        )
        meta = {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "chunk_ids": self.chunk_ids,
            "vocabulary": list(self.vocabulary),
        }
        (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        _swap_in(staging, folder)

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex | None":
        """The index saved in `folder`, or None when there is none or it cannot be read."""
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                return None
            with np.load(folder / "postings.npz") as saved:
                postings = {name: saved[name] for name in ("indptr", "docs", "weights", "dates")}
        except (OSError, ValueError, KeyError):
            return None
        vocabulary = {term: i for i, term in enumerate(meta["vocabulary"])}
        return cls(meta["chunk_ids"], vocabulary, postings, meta["fingerprint"])


def refresh_keyword_index(store: Store, fingerprint: str | None = None) -> KeywordIndex:
    """The saved index if it covers exactly the store's chunks, else a new one, built and saved."""
    fingerprint = fingerprint or fingerprint_of(store.chunk_ids())
    folder = store.cache_dir / "keyword"
    saved = KeywordIndex.load(folder)
    if saved is not None and saved.fingerprint == fingerprint:
        return saved
    index = KeywordIndex.build(store.indexed_chunks())
    index.save(folder)
    return index


def fingerprint_of(chunk_ids: Sequence[str]) -> str:
    """Names the exact set of chunks an index covers."""
    digest = hashlib.sha256()
    for chunk_id in sorted(chunk_ids):
        digest.update(chunk_id.encode())
        digest.update(b"\0")
    return f"{len(chunk_ids)}:{digest.hexdigest()[:32]}"


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed words of two letters or more, without stopwords."""
    stem = _stemmer()
    return stem([token for token in TOKEN.findall(text.lower()) if token not in STOPWORDS])


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english").stemWords


def _postings(
    rows: dict[int, list[tuple[int, int]]], terms: int, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    """Per term, the chunks holding it and their BM25 weights, in one flat array."""
    chunks = len(lengths)
    average = float(lengths.mean()) if chunks else 1.0
    indptr = np.zeros(terms + 1, dtype=np.int64)
    for term_id in range(terms):
        indptr[term_id + 1] = indptr[term_id] + len(rows[term_id])
    docs = np.empty(indptr[-1], dtype=np.int32)
    frequencies = np.empty(indptr[-1], dtype=np.float32)
    idf = np.empty(indptr[-1], dtype=np.float32)
    for term_id in range(terms):
        start, end = indptr[term_id], indptr[term_id + 1]
        holders = rows[term_id]
        docs[start:end] = [doc for doc, _ in holders]
        frequencies[start:end] = [frequency for _, frequency in holders]
        idf[start:end] = np.log(1.0 + (chunks - len(holders) + 0.5) / (len(holders) + 0.5))
    norm = K1 * (1.0 - B + B * lengths[docs] / average)
    weights = idf * frequencies * (K1 + 1.0) / (frequencies + norm)
    return {"indptr": indptr, "docs": docs, "weights": weights.astype(np.float32)}


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` with `staging`; if another process got there first, keep theirs."""
    retired = None
    if folder.exists():
        retired = folder.with_name(f".retired-{os.getpid()}-{folder.name}")
        try:
            folder.rename(retired)
        except OSError:
            retired = None
    try:
        staging.rename(folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
