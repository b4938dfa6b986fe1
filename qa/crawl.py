"""One pass over the URLs of an ingest: feeds asked for only if they changed, entries' pages
fetched only when new or updated, every host fetched politely (qa/politeness.py).

What earlier passes learnt (qa/feed_state.py) decides what is asked for; the store decides what
is held: an entry is passed over only while the store records the version fetched for it.
"""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

from qa.feed_state import (
    FeedRecord,
    FeedState,
    PageRecord,
    Retry,
    entry_fields,
    page_key,
    plan_page,
)
from qa.fetcher import RoundFetcher, Tally
from qa.loading import DEFAULT_MAX_ARTICLE_MB, Article, LoadResult, Note, Skipped, Unchanged
from qa.politeness import Backoff, retry_after_seconds
from qa.types import ProgressCallback
from qa.web import FetchFailed, FetchSettings, Reply, feed_entries, read_page, skipped

# Seconds a round may start earlier than due and still ask a source that waits: rounds started
# by cron or a timer (`--once`) each take their own while to start up.
STARTUP_SLACK = 5.0
# article id -> the content hash the store records for it
Held = Callable[[list[str]], dict[str, str]]
Item = Article | Skipped | Note | Unchanged


@dataclass
class _Page:
    """An entry's page on its way: the fetch under way and what to record of it."""

    link: str
    key: str
    entry: dict
    future: Future


class Crawl:
    """Fetches for one ingest; afterwards `tally`, `failed` and `waiting` say what it took."""

    def __init__(
        self,
        settings: FetchSettings,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # Only a watch leaves failing sources alone; an ingest asks for everything it is given.
        self.backoff = backoff
        self.clock = clock
        self.tally = Tally()
        self.failed: list[Skipped] = []
        self.waiting: list[str] = []
        self.state: FeedState | None = None
        self.held: Held = lambda ids: {}
        self.started = clock()

    @contextmanager
    def remembering(self, held: Held) -> Iterator["Crawl"]:
        """Read what earlier runs remember when first needed, and keep what this run learnt,
        also when it is interrupted. `held` tells which article versions the store records."""
        self.held = held
        try:
            yield self
        finally:
            if self.state is not None:
                self.state.save(self.clock())

    def articles(
        self,
        urls: list[str],
        max_article_mb: float = DEFAULT_MAX_ARTICLE_MB,
        progress: ProgressCallback | None = None,
    ) -> Iterator[Item]:
        """Everything `urls` hold: pages directly, feeds by the pages their entries link to,
        in that order. Each failure is one skipped line naming the URL; the others go on."""
        if self.state is None:
            self.state = FeedState.load(self.settings.state_file)
        self.started = self.clock()
        self._max_article_mb = max_article_mb
        self._fetcher = RoundFetcher(self.settings, self.tally, self.clock, progress)
        try:
            yield from self._read(urls)
        finally:
            self._fetcher.close()

    def _read(self, urls: list[str]) -> Iterator[Item]:
        requested = list(dict.fromkeys(urls))
        self._seen = set(requested)
        asked = [(url, self._ask_given(url)) for url in requested]
        # Every page to read, in the order given: a page itself, or a feed's entries in turn.
        plan: list[Item | _Page] = []
        for url, future in asked:
            if future is not None:
                plan.extend(self._given(url, future))
        for step in plan:
            yield self._page_item(step) if isinstance(step, _Page) else step

    def _ask_given(self, url: str) -> Future | None:
        """Fetch a URL given, conditionally when a version of it is known; None when it is
        left alone for now."""
        state = self.state
        retry = state.retries.get(url)
        due = retry is None or retry.retry_at <= self.started + STARTUP_SLACK
        if self.backoff is not None and not due:
            self.waiting.append(url)
            return None
        feed, page = state.feeds.get(url), state.pages.get(url)
        conditions = {}
        if not self.settings.refetch:
            if feed is not None:
                conditions = feed.conditions()
            elif page is not None and self._holds(page):
                conditions = page.conditions()
        return self._fetcher.given(url, conditions, known_page=feed is None and page is not None)

    def _given(self, url: str, future: Future) -> list[Item | _Page]:
        state = self.state
        feed = state.feeds.get(url)
        try:
            reply: Reply = future.result()
            if reply.status == 304:
                return self._not_modified(url, feed)
            if reply.kind != "feed":
                state.retries.pop(url, None)
                return [self._given_page(url, reply)]
            found = LoadResult()
            entries = feed_entries(reply, found)
        except FetchFailed as error:
            return [self._failure(url, error)]
        state.retries.pop(url, None)
        state.feeds[url] = FeedRecord(reply.etag, reply.last_modified, entries, self.started)
        return [*found.skipped, *found.notes, *self._entries(url, entries)]

    def _not_modified(self, url: str, feed: FeedRecord | None) -> list[Item | _Page]:
        self.state.retries.pop(url, None)
        if feed is not None:
            feed.seen = self.started
            return self._entries(url, feed.entries)
        page = self.state.pages[url]
        page.seen = page.checked = self.started
        return [Unchanged(page.article_id or url, url)]

    def _given_page(self, url: str, reply: Reply) -> Item:
        item = read_page(url, reply, None, self._max_article_mb)
        self._remember_page(url, item, reply, {})
        return item

    def _failure(self, url: str, error: FetchFailed) -> Skipped:
        """A URL given that failed: one skipped line, and, in a watch, a pause before the next
        try, as long as the server asks or longer with each failure in a row."""
        if self.backoff is not None:
            retry = self.state.retries.setdefault(url, Retry())
            retry.failures += 1
            wait = retry_after_seconds(error.retry_after, self.clock())
            retry.retry_at = self.started + self.backoff.delay(retry.failures, wait)
        line = skipped(url, str(error))
        self.failed.append(line)
        return line

    def _entries(self, feed_url: str, entries: list[dict]) -> list[Item | _Page]:
        """Each new entry's plan: passed over when known unchanged, else fetched."""
        fresh = [entry for entry in entries if entry["link"] not in self._seen]
        self._seen.update(entry["link"] for entry in fresh)
        keys = [page_key(feed_url, entry) for entry in fresh]
        records = {key: self.state.pages.get(key) for key in keys}
        held = self.held([r.article_id for r in records.values() if r and r.article_id])
        steps: list[Item | _Page] = []
        for entry, key in zip(fresh, keys, strict=True):
            record = records[key]
            if record is not None:
                record.seen = self.started
            fields = entry_fields(entry)
            found = held.get(record.article_id) if record and record.article_id else None
            plan = plan_page(record, fields, found, self.started, self.settings.refetch)
            link = entry["link"]
            if plan.action == "unchanged":
                steps.append(Unchanged(record.article_id, link))
            elif plan.action == "refused":
                steps.append(skipped(link, record.refused))
            else:
                future = self._fetcher.page(link, feed_url, plan.conditions)
                steps.append(_Page(link, key, entry, future))
        return steps

    def _page_item(self, page: _Page) -> Item:
        try:
            outcome = page.future.result()
        except FetchFailed as error:
            line = skipped(page.link, str(error))
            self.failed.append(line)
            return line
        fields = entry_fields(page.entry)
        if isinstance(outcome, str):
            self.state.pages[page.key] = PageRecord(
                entry=fields, refused=outcome, checked=self.started, seen=self.started
            )
            return skipped(page.link, outcome)
        if outcome.status == 304:
            record = self.state.pages[page.key]
            record.entry, record.checked = fields, self.started
            return Unchanged(record.article_id or page.link, page.link)
        item = read_page(page.link, outcome, page.entry, self._max_article_mb)
        self._remember_page(page.key, item, outcome, fields)
        return item

    def _remember_page(self, key: str, item: Item, reply: Reply, fields: dict) -> None:
        if not isinstance(item, Article):
            # Nothing to hold: the page is read again next time.
            self.state.pages.pop(key, None)
            return
        self.state.pages[key] = PageRecord(
            item.id,
            item.hash,
            reply.etag,
            reply.last_modified,
            fields,
            checked=self.started,
            seen=self.started,
        )

    def _holds(self, page: PageRecord) -> bool:
        return bool(page.article_id) and self.held([page.article_id]).get(page.article_id) == (
            page.hash
        )
