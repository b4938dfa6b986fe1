"""`qa watch`: ingest rounds on a schedule, each asking the sources only for what changed.

A round is an ingest (the same write lock, the same protocol) whose fetches remember what
earlier rounds got (qa/crawl.py). A source that fails is left alone for a while and the others
go on; nothing a network does ends the watch. Rounds run one after another, never two at once.
"""

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import EmbeddingError, InputError, StoreBusyError, StoreUnavailableError
from qa.loading import Skipped

if TYPE_CHECKING:
    from qa.crawl import Crawl
    from qa.ingestion import IngestReport
    from qa.workspace import Workspace

# Feeds are not polled more often than this.
MIN_INTERVAL = 60.0
# Backoff starts here for a single round (--once) given no interval.
DEFAULT_BACKOFF_BASE = 15 * 60.0
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
INTERVAL = re.compile(r"(?:\d+[smhd])+")
# What ends a round but not the watch: the next round may well find things mended.
ROUND_ERRORS = (StoreBusyError, StoreUnavailableError, EmbeddingError, InputError)


def parse_interval(text: str) -> float:
    """Seconds in `15m`, `1h`, `1h30m`, `90s`, `1d`; at least MIN_INTERVAL."""
    cleaned = text.strip().lower().replace(" ", "")
    if not INTERVAL.fullmatch(cleaned):
        raise InputError(
            f"Invalid interval {text!r}.", "Use a number and a unit: 15m, 1h, 1h30m, 90s, 1d."
        )
    seconds = sum(int(n) * UNITS[unit] for n, unit in re.findall(r"(\d+)([smhd])", cleaned))
    if seconds < MIN_INTERVAL:
        raise InputError(
            f"An interval of {text} is shorter than 1m.", "Feeds are polled at most once a minute."
        )
    return float(seconds)


@dataclass(frozen=True)
class RoundResult:
    """What one round did: articles by outcome, requests by purpose, and what failed."""

    number: int
    started: float
    seconds: float
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failures: tuple[Skipped, ...] = ()
    waiting: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    chunks_embedded: int = 0
    problems: tuple[Skipped, ...] = ()
    error: str | None = None

    @classmethod
    def of(
        cls, number: int, started: float, report: "IngestReport", crawl: "Crawl", seconds: float
    ) -> "RoundResult":
        failures = tuple(crawl.failed)
        return cls(
            number,
            started,
            seconds,
            added=len(report.added),
            updated=len(report.updated),
            unchanged=len(report.unchanged),
            skipped=len(report.skipped) - len(failures),
            failures=failures,
            waiting=len(crawl.waiting),
            requests=crawl.tally.to_json(),
            chunks_embedded=report.chunks_embedded,
            problems=tuple(report.skipped),
        )

    @property
    def ok(self) -> bool:
        """The round ran, and not every source it asked failed."""
        read = self.added + self.updated + self.unchanged + self.skipped + self.waiting
        return self.error is None and (not self.failures or read > 0)

    def line(self) -> str:
        when = datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M:%S")
        head = f"{when} round {self.number}"
        if self.error:
            return f"{head}: not run: {self.error}"
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        parts.append(f"{len(self.failures)} failed")
        if self.waiting:
            parts.append(f"{self.waiting} waiting to retry")
        requests = self.requests.get("requests", 0)
        not_modified = self.requests.get("not_modified", 0)
        return (
            f"{head}: {', '.join(parts)}; {requests} requests, {not_modified} not modified "
            f"({self.seconds:.1f}s)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 3),
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": len(self.failures),
            "waiting": self.waiting,
            **self.requests,
            "chunks_embedded": self.chunks_embedded,
            "problems": [{"location": s.location, "reason": s.reason} for s in self.problems],
            "error": self.error,
        }


def checked_sources(sources: Sequence[str], feed_lists: Sequence[Path]) -> list[str]:
    """What a round will ingest, checked now: a watch with a typo in it fails at once, not at
    every round."""
    from qa.subscriptions import subscribed_sources
    from qa.web import check_urls, is_url

    found = subscribed_sources(sources, feed_lists)
    if not found:
        raise InputError("Nothing to watch.", "Give feed URLs, an OPML file, or --feeds FILE.")
    check_urls([source for source in found if is_url(source)])
    missing = [source for source in found if not is_url(source) and not Path(source).exists()]
    if missing:
        raise InputError(f"No such file or directory: {', '.join(missing)}.")
    return found


def run_round(
    workspace: "Workspace",
    sources: Sequence[str],
    feed_lists: Sequence[Path],
    number: int,
    backoff_base: float,
    clock: Callable[[], float] = time.time,
) -> RoundResult:
    """One ingest of `sources` (and the feeds listed in `feed_lists`, read anew each round)."""
    from qa.crawl import Crawl
    from qa.ingestion import IngestReport, NoArticlesError, ingest
    from qa.politeness import Backoff
    from qa.subscriptions import subscribed_sources
    from qa.web import FetchSettings

    settings = workspace.settings
    started, timer = clock(), time.perf_counter()
    crawl = Crawl(FetchSettings.of(settings), Backoff(backoff_base), clock)
    try:
        report = ingest(
            subscribed_sources(sources, feed_lists),
            workspace.store(create=True),
            workspace.embedder,
            settings.chunking,
            max_article_mb=settings.max_article_mb,
            crawl=crawl,
        )
    except NoArticlesError as error:
        report = IngestReport(skipped=error.skipped)
    except ROUND_ERRORS as error:
        return RoundResult(number, started, time.perf_counter() - timer, error=str(error))
    return RoundResult.of(number, started, report, crawl, time.perf_counter() - timer)


def watch(
    workspace: "Workspace",
    sources: Sequence[str],
    feed_lists: Sequence[Path],
    every: float | None,
    on_round: Callable[[RoundResult], None],
    rounds: int | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RoundResult:
    """Run rounds `every` seconds apart (`rounds` of them, or until interrupted), each
    reported to `on_round`; returns the last. A round that outlasts the interval is followed
    at once by the next, never overlapped by it. Ctrl-C (or SIGTERM, under
    `interrupt_on_terminate`) raises KeyboardInterrupt once the write under way is whole."""
    number = 0
    start = clock()
    while True:
        number += 1
        result = run_round(
            workspace, sources, feed_lists, number, every or DEFAULT_BACKOFF_BASE, clock
        )
        on_round(result)
        if every is None or (rounds is not None and number >= rounds):
            return result
        start = next_start(start, every, clock())
        sleep(max(0.0, start - clock()))


def next_start(previous: float, every: float, now: float) -> float:
    """When the round after one started at `previous` starts: `every` later, or now if that
    time has passed while the round ran."""
    return max(previous + every, now)


@contextmanager
def interrupt_on_terminate() -> Iterator[None]:
    """SIGTERM (systemd stopping a service, `kill`) stops a watch as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
