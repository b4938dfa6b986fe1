"""Fetching as a publisher would want it: one request at a time per host, a pause between two,
robots.txt obeyed for the pages reached from feeds, and a failing source left alone for as
long as it asks (Retry-After) or, when it does not say, for longer each time."""

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from qa.web import FetchFailed

T = TypeVar("T")

# The most of a robots.txt that is read (RFC 9309 asks crawlers to read at least 500 KiB).
ROBOTS_MAX_MB = 0.5
# A Crawl-delay is obeyed up to this many seconds; a site asking for more is still fetched.
MOST_CRAWL_DELAY = 60.0
# The longest a failing source is left alone, whatever it asks.
MOST_BACKOFF = 24 * 3600.0
DISALLOWED = "disallowed by robots.txt"


def origin_of(url: str) -> str:
    """`scheme://host:port` of `url`: what robots.txt and the per-host limit apply to."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower().rsplit('@', 1)[-1]}"


def robots_url(url: str) -> str:
    return origin_of(url) + "/robots.txt"


@dataclass(frozen=True)
class Robots:
    """One host's robots.txt as read this round; `problem` when it could not be read, which
    leaves the host's pages for a later round."""

    parser: RobotFileParser | None = None
    problem: str | None = None

    @classmethod
    def of(cls, text: str) -> "Robots":
        parser = RobotFileParser()
        parser.parse(text.splitlines())
        return cls(parser)

    def allows(self, url: str, agent: str) -> bool:
        return self.parser is None or self.parser.can_fetch(agent, url)

    def crawl_delay(self, agent: str) -> float:
        delay = self.parser.crawl_delay(agent) if self.parser is not None else None
        return min(float(delay or 0), MOST_CRAWL_DELAY)


@dataclass(frozen=True)
class Backoff:
    """How long a failing source is left alone: what its Retry-After asks, else `base`
    seconds (the watch's interval) doubled with each failure in a row."""

    base: float

    def delay(self, failures: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), MOST_BACKOFF)
        return min(self.base * 2 ** max(failures - 1, 0), MOST_BACKOFF)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class HostLanes:
    """Runs fetches one at a time per host, `delay` seconds from the end of one to the start of
    the next, while other hosts are fetched side by side, at most `concurrency` at once.

    Each host has a lane (a thread while it has work queued), so a host that answers slowly
    holds up only its own pages.
    """

    def __init__(self, concurrency: int, delay: float) -> None:
        self.delay = delay
        self.slots = threading.BoundedSemaphore(concurrency)
        self.lock = threading.Lock()
        self.queues: dict[str, deque[tuple[Future, Callable[[], object]]]] = defaultdict(deque)
        self.running: set[str] = set()
        self.last_end: dict[str, float] = {}
        self.own_delays: dict[str, float] = {}
        self.resting: dict[str, tuple[float, str]] = {}
        self.closed = threading.Event()

    def submit(self, url: str, work: Callable[[], T]) -> "Future[T]":
        """`work()`, run in `url`'s host's turn."""
        future: Future = Future()
        host = origin_of(url)
        with self.lock:
            self.queues[host].append((future, work))
            if host not in self.running:
                self.running.add(host)
                # A daemon: a lane waiting out a pause never holds up the exit of qa.
                threading.Thread(target=self._drain, args=(host,), daemon=True).start()
        return future

    def slow_down(self, url: str, delay: float) -> None:
        """The host asks for at least `delay` seconds between requests (robots.txt)."""
        with self.lock:
            self.own_delays[origin_of(url)] = delay

    def rest(self, url: str, seconds: float, reason: str) -> None:
        """The host asked to be left alone for `seconds`: its other fetches fail at once."""
        with self.lock:
            self.resting[origin_of(url)] = (time.monotonic() + seconds, reason)

    def close(self) -> None:
        """Drop every fetch not started; the lanes end after the one under way."""
        self.closed.set()
        with self.lock:
            for queue in self.queues.values():
                for future, _ in queue:
                    future.cancel()
                queue.clear()

    def _drain(self, host: str) -> None:
        while True:
            with self.lock:
                queue = self.queues[host]
                if not queue:
                    self.running.discard(host)
                    return
                future, work = queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = self._in_turn(host, work)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)

    def _in_turn(self, host: str, work: Callable[[], T]) -> T:
        with self.lock:
            gap = max(self.delay, self.own_delays.get(host, 0.0))
            wait = self.last_end.get(host, float("-inf")) + gap - time.monotonic()
        if wait > 0 and self.closed.wait(wait):
            raise InterruptedError("fetching stopped")
        with self.lock:
            until, reason = self.resting.get(host, (0.0, ""))
        if time.monotonic() < until:
            raise FetchFailed(reason)
        try:
            with self._slot():
                return work()
        finally:
            with self.lock:
                self.last_end[host] = time.monotonic()

    @contextmanager
    def _slot(self) -> Iterator[None]:
        while not self.slots.acquire(timeout=0.5):
            if self.closed.is_set():
                raise InterruptedError("fetching stopped")
        try:
            yield
        finally:
            self.slots.release()
