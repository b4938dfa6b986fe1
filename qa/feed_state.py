"""What earlier runs learnt of feeds and pages, so the next one asks only for what may have
changed: each feed's validators (ETag, Last-Modified) and entries, each page's validators and
the article version it gave, and each failing source's backoff.

Kept per collection beside the store (`<home>/feeds/`), written whole or not at all. It is
never trusted for content: an entry is passed over only while the store still records the
version fetched for it, so a lost, stale or foreign file costs refetches, never wrong data.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from qa.atomic_files import write_atomically
from qa.settings import Settings

FORMAT = 1
# Records not looked at for this long belong to feeds no longer followed.
FORGET_AFTER = 30 * 24 * 3600
# A page robots.txt refused is asked about again after this long, or when its entry changes.
ROBOTS_RECHECK = 24 * 3600
# The entry fields an article is built with; `updated` says only whether the page may differ.
ARTICLE_FIELDS = ("title", "date", "source")


def state_path(settings: Settings) -> Path:
    """The collection's state file; a Chroma server's collections have their own folder."""
    folder = settings.store.data_dir / "feeds"
    if settings.store.chroma_url:
        # The same key as the server's keyword-index folder.
        server = hashlib.sha256(settings.store.chroma_url.encode()).hexdigest()[:12]
        folder = folder / f"server-{server}"
    return folder / f"{settings.store.collection}.json"


@dataclass
class PageRecord:
    """What the last good fetch of one page gave: the article version and its validators,
    or robots.txt's refusal."""

    article_id: str | None = None
    hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    # The entry fields (title, date, source, updated) the page was read with.
    entry: dict = field(default_factory=dict)
    refused: str | None = None
    checked: float = 0.0
    seen: float = 0.0

    def conditions(self) -> dict[str, str]:
        """Request headers that get a 304 when the page is still this version."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass
class FeedRecord:
    """A feed's validators and the entries of its last full reply."""

    etag: str | None = None
    last_modified: str | None = None
    entries: list[dict] = field(default_factory=list)
    seen: float = 0.0

    def conditions(self) -> dict[str, str]:
        return PageRecord(etag=self.etag, last_modified=self.last_modified).conditions()


@dataclass
class Retry:
    """A source that keeps failing: how often in a row, and when it may be asked again."""

    failures: int = 0
    retry_at: float = 0.0


@dataclass(frozen=True)
class Plan:
    """What to do about one entry's page: pass over it (`unchanged`, `refused`, both known
    without a request) or `fetch` it, with `conditions` when a version of it is held."""

    action: Literal["unchanged", "refused", "fetch"]
    conditions: dict[str, str] = field(default_factory=dict)


@dataclass
class FeedState:
    feeds: dict[str, FeedRecord] = field(default_factory=dict)
    pages: dict[str, PageRecord] = field(default_factory=dict)
    retries: dict[str, Retry] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None) -> "FeedState":
        """The state at `path`; an empty one when there is none or it cannot be read."""
        if path is None:
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                return cls(path=path)
            return cls(
                feeds={url: FeedRecord(**item) for url, item in data["feeds"].items()},
                pages={key: PageRecord(**item) for key, item in data["pages"].items()},
                retries={url: Retry(**item) for url, item in data["retries"].items()},
                path=path,
            )
        # Anything unreadable only costs a round of full fetches.
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls(path=path)

    def save(self, now: float) -> None:
        """Write the state whole, leaving out what has not been looked at for FORGET_AFTER."""
        if self.path is None:
            return
        recent = now - FORGET_AFTER
        data = {
            "format": FORMAT,
            "feeds": {url: asdict(r) for url, r in self.feeds.items() if r.seen >= recent},
            "pages": {key: asdict(r) for key, r in self.pages.items() if r.seen >= recent},
            "retries": {url: asdict(r) for url, r in self.retries.items() if r.retry_at >= recent},
        }
        text = json.dumps(data, ensure_ascii=False, sort_keys=True)
        write_atomically(self.path, lambda temporary: temporary.write_text(text, "utf-8"))


def page_key(feed_url: str, entry: dict) -> str:
    """An entry's page record: by its feed and GUID (GUIDs are unique only within a feed)."""
    return f"{feed_url} {entry['key']}"


def entry_fields(entry: dict | None) -> dict:
    """The entry's fields that decide whether its page is read again."""
    entry = entry or {}
    return {name: entry.get(name) for name in (*ARTICLE_FIELDS, "updated")}


def plan_page(
    record: PageRecord | None, fields: dict, held_hash: str | None, now: float, refetch: bool
) -> Plan:
    """Whether a page must be fetched, given what its last fetch gave and what the store holds.

    An entry seen before with the same update time is not fetched, as long as the store still
    holds the version read then; an entry with no time, or a new one, is asked for
    conditionally; an entry whose title, date or source changed is fetched whole, since the
    article is built from them too.
    """
    if record is None or refetch:
        return Plan("fetch")
    if record.refused:
        fresh = record.entry == fields and now - record.checked < ROBOTS_RECHECK
        return Plan("refused") if fresh else Plan("fetch")
    if record.article_id is None or held_hash != record.hash:
        return Plan("fetch")
    if any(record.entry.get(name) != fields[name] for name in ARTICLE_FIELDS):
        return Plan("fetch")
    if fields["updated"] is not None and record.entry.get("updated") == fields["updated"]:
        return Plan("unchanged")
    return Plan("fetch", record.conditions())
