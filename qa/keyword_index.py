"""BM25 over a collection's chunks: SQLite FTS5 on disk beside the store, updated with each write.

The index is derived data: Chroma holds the truth. Writers add a batch's chunks before its
article records are written and drop an old version's chunks after, so the index holds every
recorded version's chunks at every instant (and, for a while, some that are not recorded,
which readers never offer; see `Retriever.current`). Changes by other processes or machines
are caught up from the article records, which carry the time they were written
(`catch_up`): a cold question reads only the records of the last few minutes, never every
chunk. The whole collection
is read only when the index is missing, unreadable or of another collection.
"""

import re
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from functools import lru_cache
from pathlib import Path

from qa.store import IndexedChunk, Store, date_number
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
"""


class KeywordIndex:
    """Chunk ids ranked by BM25 for a question, optionally within a date range."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.connection = connection
        self._caught_up_at = 0.0

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
    def open_anew(cls, folder: Path) -> "KeywordIndex":
        """An empty index in place of whatever `folder` held (derived data: a damaged file is
        rebuilt from the store, never a failed question)."""
        path = folder / FILE_NAME
        for leftover in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        return cls._connect(path)

    @classmethod
    def _connect(cls, path: Path) -> "KeywordIndex":
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
            connection.executescript(SCHEMA)
            index = cls(path, connection)
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

        Undated chunks match no date bound, as in Chroma's metadata filter.
        """
        query = match_query(question)
        if not query:
            return []
        bounds, values = [], []
        if since:
            bounds.append("c.date_number >= ?")
            values.append(date_number(since))
        if as_of:
            bounds.append("c.date_number <= ?")
            values.append(date_number(as_of))
        where = "".join(f" AND {bound}" for bound in bounds)
        rows = self.connection.execute(
            "SELECT c.chunk_id, -bm25(terms) FROM terms JOIN chunks c ON c.rowid = terms.rowid"
            f" WHERE terms MATCH ?{where} ORDER BY bm25(terms) LIMIT ?",
            (query, *values, n),
        )
        return [(chunk_id, float(score)) for chunk_id, score in rows]

    def scores(self, question: str, chunk_ids: Sequence[str]) -> dict[str, float]:
        """The BM25 score of each of these chunks that shares a term with `question`."""
        query = match_query(question)
        if not query or not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.connection.execute(
            "SELECT c.chunk_id, -bm25(terms) FROM terms JOIN chunks c ON c.rowid = terms.rowid"
            f" WHERE terms MATCH ? AND terms.rowid IN"
            f" (SELECT rowid FROM chunks WHERE chunk_id IN ({marks}))",
            (query, *chunk_ids),
        )
        return {chunk_id: float(score) for chunk_id, score in rows}

    def versions_held(self, article_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(article id, content hash) of each version of these articles the index holds."""
        held: set[tuple[str, str]] = set()
        for part in _parts(list(article_ids)):
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
        with self._transaction() as cursor:
            for chunk in chunks:
                cursor.execute(
                    "INSERT OR IGNORE INTO chunks (chunk_id, article_id, article_hash, date_number)"
                    " VALUES (?, ?, ?, ?)",
                    (chunk.id, chunk.article_id, chunk.article_hash, chunk.date_number),
                )
                if cursor.rowcount == 1:
                    cursor.execute(
                        "INSERT INTO terms (rowid, tokens) VALUES (?, ?)",
                        (cursor.lastrowid, " ".join(tokenize(chunk.text))),
                    )

    def keep_only(self, keep: dict[str, Collection[str]]) -> None:
        """Drop the chunks of these articles that are of none of the versions given (an empty
        collection: all of them)."""
        with self._transaction() as cursor:
            for part in _parts(list(keep)):
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


def open_keyword_index(store: Store) -> KeywordIndex:
    """The store's keyword index, brought up to date with every write recorded in the store."""
    index = KeywordIndex.open(store.cache_dir)
    catch_up(index, store)
    return index


def catch_up(index: KeywordIndex, store: Store, force: bool = False) -> None:
    """Index the chunks of every article version recorded since the index last looked.

    Reads the records stamped in the last few minutes (and their chunks, when the index lacks
    them), however large the store; the whole store is read only when the index is new or
    belongs to another collection.
    """
    moment = time.monotonic()
    if not force and moment - index._caught_up_at < CATCH_UP_EVERY_SECONDS:
        return
    index._caught_up_at = moment
    try:
        _catch_up(index, store)
    except sqlite3.OperationalError as error:
        # A read-only index answers with what it holds; the store stays the truth.
        if "readonly" not in str(error):
            raise


def _catch_up(index: KeywordIndex, store: Store) -> None:
    collection_id = store.collection_id()
    if collection_id is None:
        return
    overlap = EMBEDDED_OVERLAP_MS if store.lock_path is not None else SERVER_OVERLAP_MS
    started = now_ms()
    window_start = index.window_start
    if index.collection_id != collection_id or window_start is None:
        rebuild(index, store)
    else:
        written = store.records_written_since(window_start)
        held = index.versions_held([record.id for record in written])
        missing = {r.id: r.hash for r in written if (r.id, r.hash) not in held}
        if missing:
            index.add(store.indexed_chunks_of(missing))
            index.keep_only({id_: {hash_} for id_, hash_ in missing.items()})
    # Records stamped before `started - overlap` were all visible when they were read.
    next_start = max(window_start or 0, started - overlap)
    if index.collection_id != collection_id or next_start != window_start:
        index.mark_synced(collection_id, next_start)


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


def match_query(question: str) -> str:
    """An FTS5 query matching any of the question's terms."""
    terms = dict.fromkeys(tokenize(question))
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


def _parts(items: list, size: int = 500) -> Iterator[list]:
    """SQLite caps the parameters of one statement; ask in parts."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
