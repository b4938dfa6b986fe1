"""The write protocol: each batch of articles written so that a kill at any instant loses nothing.

For each batch, in this order:
1. the journal names the batch's article versions, under this writer's id and a heartbeat;
2. the new chunks go into Chroma, then into the keyword index;
3. the article records are written: from here on readers answer from the new versions;
4. the old versions' chunks are dropped, from Chroma and the keyword index.

Until step 3 every reader sees an article's old version, whole; after it, the new one. Chunks
that a killed writer left (new ones without a record, or old ones not yet dropped) are never
offered, since readers take only the recorded version's chunks, and the next writer removes
exactly those: it reads the journal, not the whole store. On a Chroma server several writers
may be at work at once, so a writer repairs only the entries of writers whose heartbeat has
stopped for `LEASE_SECONDS`, never another live writer's batch; on an embedded store the write
lock makes every entry left behind a dead writer's.
"""

import json
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qa.keyword_index import KeywordIndex, catch_up, now_ms
from qa.store import ArticleChunks, IndexedChunk, Store, date_number

# A writer that has not touched its journal entry for this long is taken for dead. Each batch
# refreshes it, so this must be far longer than embedding and writing one batch takes.
LEASE_SECONDS = 15 * 60


@dataclass(frozen=True)
class JournalEntry:
    """What one writer is writing: article versions (id -> content hash) and when it last
    said so."""

    id: str
    versions: dict[str, str]
    heartbeat: float

    @classmethod
    def from_chroma(cls, entry_id: str, meta: dict[str, Any]) -> "JournalEntry":
        try:
            versions = json.loads(meta.get("versions", "{}"))
        except json.JSONDecodeError:
            versions = {}
        return cls(entry_id, versions, float(meta.get("heartbeat", 0.0)))


class Writer:
    """One ingest's writes into a store and its keyword index."""

    def __init__(self, store: Store, index: KeywordIndex) -> None:
        self.store = store
        self.index = index
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"

    def start(self) -> None:
        """Bring the keyword index up to date and repair what dead writers left."""
        catch_up(self.index, self.store, force=True)
        self.repair_dead_writers()

    def write(self, batch: Sequence[ArticleChunks], written_at: int | None = None) -> None:
        """Write one batch of articles (their chunks, vectors and records) by the protocol.

        `written_at` (ms since the epoch) stamps the records; by default, now. A store made up
        of an archive's past (bench/bench_scale.py) stamps them in that past.
        """
        if not batch:
            return
        versions = {article.id: article.hash for article, _, _ in batch}
        self.store.put_journal_entry(
            self.id, {"versions": json.dumps(versions), "heartbeat": time.time()}
        )
        self.store.put_chunks(batch)
        self.index.add(indexed_chunks(batch, versions))
        self.store.put_records(batch, now_ms() if written_at is None else written_at)
        keep = self.versions_to_keep(versions, self.live_entries())
        self.store.keep_only(keep)
        self.index.keep_only(keep)

    def finish(self) -> None:
        """The last batch is whole: nothing of this writer's is left to repair."""
        self.store.delete_journal_entry(self.id)
        # Other writers' records since the start, and this writer's own, are known from here.
        catch_up(self.index, self.store, force=True)

    def repair_dead_writers(self) -> int:
        """Remove the unrecorded chunks of every batch a dead writer left; returns how many
        chunks went."""
        entries = self.journal()
        live = self.live_entries(entries)
        alive = {entry.id for entry in live}
        dead = [entry for entry in entries if entry.id != self.id and entry.id not in alive]
        return sum(self.repair(entry, live) for entry in dead)

    def repair(self, entry: JournalEntry, live: list[JournalEntry]) -> int:
        """Keep only the recorded version of each article the entry names (and any version a
        live writer is writing)."""
        keep = self.versions_to_keep({}, live, list(entry.versions))
        removed = self.store.keep_only(keep)
        self.index.keep_only(keep)
        self.store.delete_journal_entry(entry.id)
        return removed

    def versions_to_keep(
        self,
        mine: dict[str, str],
        live: list[JournalEntry],
        article_ids: list[str] | None = None,
    ) -> dict[str, set[str]]:
        """Per article, every version that must stay: the one recorded now (another writer's
        record may have landed after this one's), this writer's, and any a live writer names
        in the journal, its record still to come."""
        ids = article_ids if article_ids is not None else list(mine)
        recorded = self.store.current_versions(ids)
        keep = {
            id_: {version for version in (recorded.get(id_), mine.get(id_)) if version}
            for id_ in ids
        }
        for entry in live:
            for id_, version in entry.versions.items():
                if id_ in keep:
                    keep[id_].add(version)
        return keep

    def journal(self) -> list[JournalEntry]:
        """Every writer's entry, this one's included."""
        return [JournalEntry.from_chroma(id_, meta) for id_, meta in self.store.journal_entries()]

    def live_entries(self, entries: list[JournalEntry] | None = None) -> list[JournalEntry]:
        """Of `entries` (by default, the journal read now), those of the other writers still at
        work: none on an embedded store, whose write lock this writer holds."""
        if self.store.lock_path is not None:
            return []
        entries = self.journal() if entries is None else entries
        alive_after = time.time() - LEASE_SECONDS
        return [entry for entry in entries if entry.id != self.id and entry.heartbeat > alive_after]


def indexed_chunks(batch: Sequence[ArticleChunks], versions: dict[str, str]) -> list[IndexedChunk]:
    """The batch's chunks as the keyword index takes them: title and text, version and date."""
    indexed = []
    for article, chunks, _ in batch:
        version = versions[article.id]
        day = date_number(article.date) if article.date else None
        indexed += [
            IndexedChunk(
                chunk.id, article.id, version, IndexedChunk.searched(article.title, chunk.text), day
            )
            for chunk in chunks
        ]
    return indexed
