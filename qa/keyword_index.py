"""BM25 over a collection's chunks: SQLite FTS5 on disk beside the store, updated with each write.

The index is derived data: Chroma holds the truth. Writers add a batch's chunks before its
article records are written and drop an old version's chunks after, so the index holds every
recorded version's chunks at every instant (and, for a while, some that are not recorded,
which readers never offer; see `Retriever.current`). Changes by other processes or machines
are caught up from the article records, which carry the time they were written
(`catch_up`): a cold question reads only the records of the last few minutes, never every
chunk. The whole collection
is read only when the index is missing, unreadable or of another collection.

Writers keep the file. A question opens it read-only; when the index is behind (other
machines wrote through a server since this one last wrote) it catches up in a copy held in
memory, so a folder mounted read-only still answers. Only an index that is missing (or of
another collection) is built by a question, once, into the file when qa may write there: else
every cold question on that machine would read the whole collection again.
"""

import math
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa.store import IndexedChunk, Store, date_number, in_parts
from qa.words import STOPWORDS

FILE_NAME = "keyword.sqlite3"
SCHEMA_VERSION = "2"
TOKEN = re.compile(r"\w\w+")
# A record stamped this long ago is taken to be visible by now. Through a Chroma server,
# writers on several machines race and their clocks differ, so a record can appear after a
# later-stamped one; an embedded store has one writer at a time, on this machine's clock.
SERVER_OVERLAP_MS = 5 * 60 * 1000
EMBEDDED_OVERLAP_MS = 2 * 1000
# A long-lived reader (chat, the MCP server) looks for other writers' changes at most this often.
CATCH_UP_EVERY_SECONDS = 1.0
# A search ranks only the chunks holding the question's rarest terms, about this many in all
# (always the rarest term's): its cost stays flat as the archive grows, and the chunks left
# out share only common words with the question, which BM25 scores low. On RealTime QA's dev
# half (5,402 chunks) 2,000 prunes 97 of 155 questions and leaves every one's top 5 as it was;
# 1,000 prunes 149 and changes 4 top-5 lists, and no retrieval figure at either.
POSTINGS_BUDGET = 2_000
# When terms were left out, this many candidates per result are scored again on every term.
RESCORED_PER_RESULT = 2
# Values bound in one statement: SQLite caps them.
PARAMETERS_PER_STATEMENT = 500
# Chunks added in one statement batch while building the index from the store.
BUILD_BATCH = 2000
BUSY_TIMEOUT_SECONDS = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    article_id TEXT NOT NULL,
    article_hash TEXT NOT NULL,
    date_number INTEGER
);
CREATE INDEX IF NOT EXISTS chunks_by_article ON chunks (article_id, article_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS terms
    USING fts5(tokens, tokenize="unicode61 remove_diacritics 0 tokenchars '_'");
CREATE VIRTUAL TABLE IF NOT EXISTS terms_vocab USING fts5vocab(terms, 'row');
"""


@dataclass(frozen=True)
class QueryTerms:
    """A question's terms that the index holds, by how many chunks hold each, and the chunks
    and terms indexed in all."""

    held: dict[str, int]
    chunks: int
    tokens: int


class IndexRows:
    """The index's rows: which chunks it holds, how they are added and dropped, and what part
    of the store they cover."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._caught_up_at = 0.0
        self.read_only = False
        self.in_memory = False
        # Where a question's index lives: the file to build it into if it has to be built.
        self.folder: Path | None = None

    def versions_held(self, article_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(article id, content hash) of each version of these articles the index holds."""
        held: set[tuple[str, str]] = set()
        for part in in_parts(list(article_ids), PARAMETERS_PER_STATEMENT):
            marks = ",".join("?" * len(part))
            held.update(
                self.connection.execute(
                    "SELECT DISTINCT article_id, article_hash FROM chunks"
                    f" WHERE article_id IN ({marks})",
                    part,
                )
            )
        return held

    def chunk_count(self) -> int:
        return self.connection.execute("SELECT count(*) FROM chunks").fetchone()[0]

    # Writing

    def add(self, chunks: Iterable[IndexedChunk]) -> None:
        """Index these chunks (one transaction); a chunk already indexed is left as it is."""
        first: dict[str, IndexedChunk] = {}
        for chunk in chunks:
            first.setdefault(chunk.id, chunk)
        # Tokenized before the write lock is taken: other writers wait only for the inserts.
        tokens = {id_: " ".join(tokenize(chunk.text)) for id_, chunk in first.items()}
        with self._transaction() as cursor:
            held = set()
            for part in in_parts(list(first), PARAMETERS_PER_STATEMENT):
                marks = ",".join("?" * len(part))
                held.update(
                    id_
                    for (id_,) in cursor.execute(
                        f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks})", part
                    )
                )
            new = [chunk for id_, chunk in first.items() if id_ not in held]
            # The rowids SQLite would give them one at a time (the largest plus one), given
            # here so that both tables take all the rows in one statement each.
            (largest,) = cursor.execute("SELECT max(rowid) FROM chunks").fetchone()
            rowids = range((largest or 0) + 1, (largest or 0) + 1 + len(new))
            cursor.executemany(
                "INSERT INTO chunks (rowid, chunk_id, article_id, article_hash, date_number)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (rowid, chunk.id, chunk.article_id, chunk.article_hash, chunk.date_number)
                    for rowid, chunk in zip(rowids, new, strict=True)
                ],
            )
            cursor.executemany(
                "INSERT INTO terms (rowid, tokens) VALUES (?, ?)",
                [(rowid, tokens[chunk.id]) for rowid, chunk in zip(rowids, new, strict=True)],
            )

    def keep_only(self, keep: dict[str, Collection[str]]) -> None:
        """Drop the chunks of these articles that are of none of the versions given (an empty
        collection: all of them)."""
        with self._transaction() as cursor:
            for part in in_parts(list(keep), PARAMETERS_PER_STATEMENT):
                marks = ",".join("?" * len(part))
                rows = cursor.execute(
                    "SELECT rowid, article_id, article_hash FROM chunks"
                    f" WHERE article_id IN ({marks})",
                    part,
                ).fetchall()
                doomed = [(row,) for row, id_, hash_ in rows if hash_ not in keep[id_]]
                cursor.executemany("DELETE FROM terms WHERE rowid = ?", doomed)
                cursor.executemany("DELETE FROM chunks WHERE rowid = ?", doomed)

    def clear(self) -> None:
        with self._transaction() as cursor:
            cursor.execute("DELETE FROM terms")
            cursor.execute("DELETE FROM chunks")
            cursor.execute("DELETE FROM meta WHERE key != 'schema'")

    # What the index covers

    @property
    def collection_id(self) -> str | None:
        return _meta_value(self.connection, "collection")

    @property
    def window_start(self) -> int | None:
        """Every record stamped before this time (ms) has its chunks in the index."""
        value = _meta_value(self.connection, "window_start")
        return int(value) if value is not None else None

    def mark_synced(self, collection_id: str, window_start: int) -> None:
        with self._transaction():
            self._set("collection", collection_id)
            self._set("window_start", str(window_start))

    def _set(self, key: str, value: str) -> None:
        self.connection.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with closing(self.connection.cursor()) as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")


class KeywordIndex(IndexRows):
    """Chunk ids ranked by BM25 for a question, optionally within a date range."""

    @classmethod
    def open(cls, folder: Path) -> "KeywordIndex":
        """The index in `folder`, created empty if missing; an unreadable one is started anew."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILE_NAME
        try:
            return cls._connect(path)
        except sqlite3.DatabaseError:
            return cls.open_anew(folder)

    @classmethod
    def open_for_reading(cls, folder: Path) -> "KeywordIndex":
        """The index in `folder` opened read-only, or an empty one in memory when it is
        missing or unreadable: reading never writes a file."""
        index = cls._opened_for_reading(folder)
        index.folder = folder
        return index

    @classmethod
    def _opened_for_reading(cls, folder: Path) -> "KeywordIndex":
        path = folder / FILE_NAME
        if not path.is_file():
            return cls.in_memory()
        # In a folder nobody can write, no one changes the file while it is read, and SQLite
        # may not make the shared-memory file WAL mode reads with.
        immutable = "&immutable=1" if not os.access(folder, os.W_OK) else ""
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro{immutable}",
                uri=True,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.DatabaseError:
            return cls.in_memory()
        try:
            if _meta_value(connection, "schema") != SCHEMA_VERSION:
                raise sqlite3.DatabaseError("keyword index of another schema")
            connection.execute("SELECT count(*) FROM terms_data").fetchone()
        except sqlite3.DatabaseError:
            connection.close()
            return cls.in_memory()
        index = cls(connection)
        index.read_only = True
        return index

    @classmethod
    def open_to_build(cls, folder: Path) -> "KeywordIndex":
        """An index to build from the whole store: in `folder` when qa may write there (so the
        whole store is read once, not at every cold question), else in memory."""
        path = folder / FILE_NAME
        existing = next(parent for parent in (path, *path.parents) if parent.exists())
        if os.access(existing, os.W_OK):
            try:
                return cls.open(folder)
            except (OSError, sqlite3.Error):
                pass
        return cls.in_memory()

    @classmethod
    def in_memory(cls) -> "KeywordIndex":
        """An empty index held in memory only."""
        index = cls._connect(":memory:")
        index.in_memory = True
        return index

    def copied_to_memory(self) -> "KeywordIndex":
        """A copy of this index in memory, to catch up without writing the file."""
        copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.connection.backup(copy)
        self.close()
        index = KeywordIndex(copy)
        index.in_memory = True
        index._caught_up_at = self._caught_up_at
        return index

    @classmethod
    def open_anew(cls, folder: Path) -> "KeywordIndex":
        """An empty index in place of whatever `folder` held (derived data: a damaged file is
        rebuilt from the store, never a failed question)."""
        path = folder / FILE_NAME
        for leftover in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        return cls._connect(path)

    @classmethod
    def _connect(cls, path: Path | str) -> "KeywordIndex":
        # An ingest writes from its writer thread; every use is one at a time.
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            version = _meta_value(connection, "schema")
            if version not in (None, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"keyword index schema {version}")
            index = cls(connection)
            if version is None:
                # Written once: a question opening an existing index writes nothing here.
                connection.executescript(SCHEMA)
                index._set("schema", SCHEMA_VERSION)
            return index
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        self.connection.close()

    # Reading

    def search(
        self, question: str, n: int, as_of: str | None = None, since: str | None = None
    ) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, BM25 score) pairs, best first; chunks sharing no term are out.

        When the question's terms are held by more than POSTINGS_BUDGET chunks in all, the
        candidates are the chunks holding its rarest terms, ranked on those, and the best are
        scored again on every term. Undated chunks match no date bound, as in Chroma's
        metadata filter.
        """
        terms = self._terms(question)
        return self._best(terms, n, as_of, since) if terms else []

    def scores(self, question: str, chunk_ids: Sequence[str]) -> dict[str, float]:
        """The BM25 score of each of these chunks that shares a term with `question`."""
        terms = self._terms(question)
        return self._scores_of(terms, chunk_ids) if terms else {}

    def best_and_scores(
        self,
        question: str,
        n: int,
        others: Callable[[], Sequence[str]],
        as_of: str | None = None,
        since: str | None = None,
    ) -> dict[str, float]:
        """The scores of `search`'s `n` best, and of those of `others()` that share a term with
        the question: the question's terms looked up once for both. `others` is called once
        the best are found, so they can be searched for meanwhile."""
        terms = self._terms(question)
        if not terms:
            return {}
        found = dict(self._best(terms, n, as_of, since))
        found.update(self._scores_of(terms, [id_ for id_ in others() if id_ not in found]))
        return found

    def _terms(self, question: str) -> "QueryTerms | None":
        """The question's terms that some chunk holds, with what BM25 needs of the index;
        None when no chunk holds any."""
        held = {}
        for term in dict.fromkeys(tokenize(question)):
            row = self.connection.execute(
                "SELECT doc FROM terms_vocab WHERE term = ?", (term,)
            ).fetchone()
            if row is not None:
                held[term] = row[0]
        if not held:
            return None
        # FTS5's averages record: the chunks and the terms it has indexed, for its bm25().
        row = self.connection.execute("SELECT block FROM terms_data WHERE id = 1").fetchone()
        chunks, at = read_varint(row[0], 0)
        tokens, _ = read_varint(row[0], at)
        return QueryTerms(held, chunks, tokens)

    def _best(
        self, terms: "QueryTerms", n: int, as_of: str | None, since: str | None
    ) -> list[tuple[str, float]]:
        rare = rarest(terms.held, POSTINGS_BUDGET)
        bounds, values = [], []
        if since:
            bounds.append("c.date_number >= ?")
            values.append(date_number(since))
        if as_of:
            bounds.append("c.date_number <= ?")
            values.append(date_number(as_of))
        where = "".join(f" AND {bound}" for bound in bounds)
        pruned = len(rare) < len(terms.held)
        rows = self.connection.execute(
            "SELECT c.rowid, c.chunk_id, -bm25(terms) FROM terms"
            " JOIN chunks c ON c.rowid = terms.rowid"
            f" WHERE terms MATCH ?{where} ORDER BY bm25(terms) LIMIT ?",
            (any_of(rare), *values, n * RESCORED_PER_RESULT if pruned else n),
        ).fetchall()
        if not pruned:
            return [(chunk_id, float(score)) for _, chunk_id, score in rows]
        rescored = self._bm25(terms, [(rowid, chunk_id) for rowid, chunk_id, _ in rows])
        return sorted(rescored.items(), key=lambda item: -item[1])[:n]

    def _scores_of(self, terms: "QueryTerms", chunk_ids: Sequence[str]) -> dict[str, float]:
        rows = []
        for part in in_parts(list(chunk_ids), PARAMETERS_PER_STATEMENT):
            marks = ",".join("?" * len(part))
            rows += self.connection.execute(
                f"SELECT rowid, chunk_id FROM chunks WHERE chunk_id IN ({marks})", list(part)
            ).fetchall()
        return self._bm25(terms, rows)

    def _bm25(self, terms: "QueryTerms", rows: Sequence[tuple[int, str]]) -> dict[str, float]:
        """FTS5's own bm25() of these terms for each (rowid, chunk id), computed here from the
        row's terms: FTS5's counts every chunk holding each term again at each query."""
        average = terms.tokens / terms.chunks
        weights = {term: fts5_idf(terms.chunks, count) for term, count in terms.held.items()}
        found = {}
        for rowid, chunk_id in rows:
            stored = self.connection.execute(
                "SELECT tokens FROM terms WHERE rowid = ?", (rowid,)
            ).fetchone()
            if stored is None:
                continue
            words = stored[0].split()
            counts = Counter(word for word in words if word in weights)
            if counts:
                norm = K1 * (1 - B + B * len(words) / average)
                found[chunk_id] = sum(
                    weights[term] * frequency * (K1 + 1) / (frequency + norm)
                    for term, frequency in counts.items()
                )
        return found


def catch_up(index: KeywordIndex, store: Store, force: bool = False) -> KeywordIndex:
    """Index the chunks of every article version recorded since the index last looked; the
    index to use from now on.

    Reads the records stamped in the last few minutes (and their chunks, when the index lacks
    them), however large the store; the whole store is read only when the index is new or
    belongs to another collection. An index opened for reading is never written: when it
    lacks something, a copy in memory is caught up and returned instead; only when it must be
    built whole is it built into its file, where qa may write (`_to_build`).
    """
    moment = time.monotonic()
    if not force and moment - index._caught_up_at < CATCH_UP_EVERY_SECONDS:
        return index
    index._caught_up_at = moment
    collection_id = store.collection_id()
    if collection_id is None:
        return index
    overlap = EMBEDDED_OVERLAP_MS if store.lock_path is not None else SERVER_OVERLAP_MS
    started = now_ms()
    window_start = index.window_start
    foreign = index.collection_id != collection_id
    if foreign or window_start is None:
        index = _to_build(index)
        rebuild(index, store)
    else:
        for written in store.records_written_since(window_start):
            held = index.versions_held([record.id for record in written])
            missing = {r.id: r.hash for r in written if (r.id, r.hash) not in held}
            if missing:
                index = _writable(index)
                index.add(store.indexed_chunks_of(missing))
                index.keep_only({id_: {hash_} for id_, hash_ in missing.items()})
    # Records stamped before `started - overlap` were all visible when they were read.
    next_start = max(window_start or 0, started - overlap)
    if (foreign or next_start != window_start) and not index.read_only:
        index.mark_synced(collection_id, next_start)
    return index


def _writable(index: KeywordIndex) -> KeywordIndex:
    return index.copied_to_memory() if index.read_only else index


def _to_build(index: KeywordIndex) -> KeywordIndex:
    """The index to build from the whole store. A question's (opened for reading) is built once
    into its file where qa may write there, else every cold question would read the whole
    collection again; elsewhere in memory."""
    if index.folder is None:
        return _writable(index)
    index.close()
    return KeywordIndex.open_to_build(index.folder)


def rebuild(index: KeywordIndex, store: Store) -> None:
    """Index every chunk in the store, from scratch."""
    index.clear()
    batch: list[IndexedChunk] = []
    for chunk in store.indexed_chunks():
        batch.append(chunk)
        if len(batch) >= BUILD_BATCH:
            index.add(batch)
            batch = []
    index.add(batch)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# BM25's term-frequency saturation and length normalisation, as in FTS5's bm25() and Lucene.
K1 = 1.2
B = 0.75


def fts5_idf(chunks: int, holding: int) -> float:
    """FTS5's inverse document frequency: a term in half the chunks or more weighs almost 0."""
    idf = math.log((chunks - holding + 0.5) / (holding + 0.5))
    return idf if idf > 0 else 1e-6


def rarest(held: dict[str, int], budget: int) -> list[str]:
    """The terms held by fewest chunks, up to `budget` chunks in all (at least one term)."""
    chosen, total = [], 0
    for term, count in sorted(held.items(), key=lambda item: item[1]):
        if chosen and total + count > budget:
            break
        chosen.append(term)
        total += count
    return chosen


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    """One SQLite varint (big-endian, seven bits a byte, all eight in a ninth) at `at`."""
    value = 0
    for i in range(9):
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at + i + 1
    raise ValueError("varint too long")


def any_of(terms: Sequence[str]) -> str:
    return " OR ".join(f'"{term}"' for term in terms)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed words of two letters or more, without stopwords."""
    stem = _stemmer()
    return stem([token for token in TOKEN.findall(text.lower()) if token not in STOPWORDS])


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english").stemWords


def _meta_value(connection: sqlite3.Connection, key: str) -> str | None:
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None  # no meta table yet
    return row[0] if row else None
