"""The fetches of one run, each in its host's turn (qa/politeness.py): robots.txt read once a
run for each host whose pages come from feeds, and every request counted."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from qa.politeness import (
    DISALLOWED,
    ROBOTS_MAX_MB,
    HostLanes,
    Robots,
    retry_after_seconds,
    robots_url,
)
from qa.types import ProgressCallback
from qa.web import FetchFailed, FetchSettings, Reply, agent_token, fetch, url_problem

# Statuses by which a server asks to be left alone for a while.
BUSY_STATUSES = {429, 503}
# How long a host that said 429 or 503 to a page, without saying how long, is left alone.
DEFAULT_REST = 60.0


@dataclass
class Tally:
    """HTTP requests sent (redirects included), by what they were for, and 304s received."""

    feeds: int = 0
    pages: int = 0
    robots: int = 0
    not_modified: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def requests(self) -> int:
        return self.feeds + self.pages + self.robots

    def add(self, kind: str, requests: int, reply: Reply | None = None) -> None:
        with self.lock:
            setattr(self, kind, getattr(self, kind) + requests)
            if reply is not None and reply.status == 304:
                self.not_modified += 1

    def to_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "not_modified": self.not_modified,
            "feed_requests": self.feeds,
            "page_requests": self.pages,
            "robots_requests": self.robots,
        }


class RoundFetcher:
    """Fetches for one run, at most `settings.concurrency` at once, one at a time per host."""

    def __init__(
        self,
        settings: FetchSettings,
        tally: Tally,
        clock: Callable[[], float] = time.time,
        progress: ProgressCallback | None = None,
    ) -> None:
        import httpx

        self.settings = settings
        self.tally = tally
        self.clock = clock
        self.progress = _Progress(progress)
        self.lanes = HostLanes(settings.concurrency, settings.host_delay)
        self.robots: dict[str, Future] = {}
        # One for every fetch: loading the certificates takes about as long as a small page.
        self.ssl_context = httpx.create_ssl_context()

    def given(self, url: str, conditions: dict[str, str], known_page: bool) -> "Future[Reply]":
        """A URL the user gave: counted as a page when it is known as one or gives one."""

        def kind(reply: Reply | None) -> str:
            is_html = reply is not None and reply.kind == "html"
            return "pages" if known_page or is_html else "feeds"

        return self._submit(url, lambda: self._fetch(url, url, conditions, kind))

    def page(self, url: str, typed: str, conditions: dict[str, str]) -> "Future[Reply | str]":
        """A page found by way of `typed`, fetched if its host's robots.txt allows; else the
        future holds the refusal."""
        # A link qa cannot fetch fails with its own reason, not its robots.txt's.
        robots = None if url_problem(url) else self._robots_of(url, typed)

        def work() -> Reply | str:
            rules: Robots = robots.result() if robots else Robots()
            if rules.problem:
                raise FetchFailed(rules.problem)
            if not rules.allows(url, agent_token()):
                return DISALLOWED
            try:
                return self._fetch(url, typed, conditions, lambda _: "pages")
            except FetchFailed as error:
                if error.status in BUSY_STATUSES:
                    self._rest(url, error)
                raise

        return self._submit(url, work)

    def close(self) -> None:
        """Drop the fetches not started yet (Ctrl-C, or a bug) instead of awaiting them."""
        self.lanes.close()

    def _submit(self, url: str, work: Callable) -> Future:
        self.progress.add_total()
        future = self.lanes.submit(url, work)
        future.add_done_callback(lambda _: self.progress.add_done())
        return future

    def _fetch(
        self,
        url: str,
        typed: str,
        conditions: dict[str, str] | None,
        kind: Callable[[Reply | None], str],
        settings: FetchSettings | None = None,
    ) -> Reply:
        sent = _Count()
        reply = None
        try:
            settings = settings or self.settings
            reply = fetch(url, settings, typed, self.ssl_context, conditions, sent.add)
            return reply
        finally:
            self.tally.add(kind(reply), sent.count, reply)

    def _rest(self, url: str, error: FetchFailed) -> None:
        """The site asked for a pause: its other pages wait for the next run."""
        wait = retry_after_seconds(error.retry_after, self.clock())
        reason = f"not asked: the site answered {error} to another page; asked next time"
        self.lanes.rest(url, DEFAULT_REST if wait is None else wait, reason)

    def _robots_of(self, link: str, typed: str) -> Future:
        """This run's robots.txt for `link`'s host, asked for once, in the host's turn."""
        where = robots_url(link)
        if where not in self.robots:
            self.robots[where] = self.lanes.submit(where, lambda: self._read_robots(where, typed))
        return self.robots[where]

    def _read_robots(self, where: str, typed: str) -> Robots:
        capped = self.settings.model_copy(
            update={"max_page_mb": min(self.settings.max_page_mb, ROBOTS_MAX_MB)}
        )
        try:
            reply = self._fetch(where, typed, None, lambda _: "robots", capped)
        except FetchFailed as error:
            # No robots.txt (a 4xx) allows everything (RFC 9309); an address refused is refused
            # again, with its reason, when the page is asked for.
            if error.refused or (error.status is not None and error.status < 500):
                return Robots()
            return Robots(problem=f"robots.txt could not be read ({error}); asked next time")
        robots = Robots.of(reply.body.decode("utf-8", errors="replace"))
        if delay := robots.crawl_delay(agent_token()):
            self.lanes.slow_down(where, delay)
        return robots


class _Count:
    def __init__(self) -> None:
        self.count = 0

    def add(self) -> None:
        self.count += 1


class _Progress:
    """Fetches done out of fetches known, reported from the lanes."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.done = self.total = 0
        self.lock = threading.Lock()

    def add_total(self) -> None:
        with self.lock:
            self.total += 1
            self._report()

    def add_done(self) -> None:
        with self.lock:
            self.done += 1
            self._report()

    def _report(self) -> None:
        if self.progress:
            self.progress(self.done, self.total)
