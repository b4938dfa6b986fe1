"""Fetch news pages and RSS/Atom feeds over HTTP and read the articles in them."""

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit, urlunsplit

from qa.errors import InputError
from qa.loading import (
    DEFAULT_MAX_ARTICLE_MB,
    LoadResult,
    Skipped,
    article_from_page,
    normalise_date,
    too_large,
)
from qa.masking import mask_secrets
from qa.settings import Settings

DEFAULT_TIMEOUT = 20.0
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_PAGE_MB = 10.0
MAX_REDIRECTS = 5
HTML_TYPES = {"text/html", "application/xhtml+xml"}
FEED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
}
FEED_ROOTS = (b"<rss", b"<feed", b"<rdf:rdf")
# Types that say little about the content; the start of the body decides.
VAGUE_TYPES = {"", "text/plain", "application/octet-stream"}
# Enough of the start of a reply to see whether it is a feed or a page when its type is vague.
SNIFF_BYTES = 1024

ProgressCallback = Callable[[int, int], None]


def user_agent() -> str:
    try:
        release = version("qa-news")
    except PackageNotFoundError:
        release = "dev"
    return f"qa-news/{release} (news question answering; +https://pypi.org/project/qa-news/)"


@dataclass(frozen=True)
class FetchSettings:
    """How pages are fetched: a deadline per page, a size limit, and requests at once."""

    timeout: float = DEFAULT_TIMEOUT
    max_page_mb: float = DEFAULT_MAX_PAGE_MB
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def of(cls, settings: Settings) -> "FetchSettings":
        return cls(
            timeout=settings.fetch_timeout,
            max_page_mb=settings.max_page_mb,
            concurrency=settings.fetch_concurrency,
        )


@dataclass(frozen=True)
class Reply:
    """A page or feed as fetched: where it ended up after redirects, and its bytes."""

    url: str
    content_type: str
    charset: str | None
    body: bytes

    @property
    def kind(self) -> str:
        """`feed`, `html`, or the content type when it is neither."""
        start = self.body[:SNIFF_BYTES].lstrip().lower()
        looks_html = start.startswith((b"<!doctype html", b"<html"))
        # Feeds are often served as text/html or text/plain; their root element tells.
        feed_root = any(root in start for root in FEED_ROOTS)
        if (
            feed_root
            and not looks_html
            and self.content_type in FEED_TYPES | HTML_TYPES | VAGUE_TYPES
        ):
            return "feed"
        if self.content_type in HTML_TYPES:
            return "html"
        if self.content_type in FEED_TYPES | VAGUE_TYPES and looks_html:
            return "html"
        return self.content_type or "no content type"

    def html(self) -> str | bytes:
        """The page as text when the server names its charset; else bytes, which the extractor
        decodes by the page's own declaration."""
        if self.charset:
            try:
                return self.body.decode(self.charset, errors="replace")
            except LookupError:
                pass
        return self.body


class FetchFailed(Exception):
    """One URL could not be read; the message is the reason shown beside it."""


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def check_urls(urls: Iterable[str]) -> None:
    """Refuse malformed URLs before anything is fetched."""
    bad = [url for url in urls if not urlsplit(url).hostname]
    if bad:
        raise InputError(
            f"Not a valid URL: {', '.join(bad)}.", "Example: https://example.com/feed.xml"
        )


def article_id(url: str) -> str:
    """A stable, readable id: the URL without scheme, `www.`, fragment or trailing slash."""
    parts = urlsplit(url)
    host = (parts.netloc or "").lower().removeprefix("www.")
    return urlunsplit(("", host, parts.path.rstrip("/"), parts.query, "")).removeprefix("//")


def fetch_articles(
    urls: list[str],
    settings: FetchSettings,
    max_article_mb: float = DEFAULT_MAX_ARTICLE_MB,
    progress: ProgressCallback | None = None,
) -> LoadResult:
    """The articles at `urls`: pages directly, feeds by the pages their entries link to.

    Each failure is one skipped line naming the URL; the other URLs go on.
    """
    import httpx

    result = LoadResult()
    counter = _Counter(progress)
    limits = httpx.Limits(max_connections=settings.concurrency)
    with (
        httpx.Client(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=settings.timeout,
            limits=limits,
            headers={"User-Agent": user_agent()},
        ) as client,
        ThreadPoolExecutor(max_workers=settings.concurrency) as pool,
    ):

        def fetch_later(url: str) -> Future:
            counter.add_total(1)
            future = pool.submit(fetch, client, url, settings)
            future.add_done_callback(lambda _: counter.add_done(1))
            return future

        try:
            read_all(urls, fetch_later, result, max_article_mb)
        except BaseException:
            # Ctrl-C or a bug: the fetches not started yet are dropped instead of awaited.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return result


def read_all(
    urls: list[str],
    fetch_later: Callable[[str], Future],
    result: LoadResult,
    max_article_mb: float,
) -> None:
    """Fetch `urls`, then every feed entry, and add what each page holds to `result`."""
    requested = list(dict.fromkeys(urls))
    seen = set(requested)
    replies = [(url, fetch_later(url)) for url in requested]
    # Every page to read, in the order given: a page itself, or a feed's entries in turn.
    pages: list[tuple[str, Future, dict | None]] = []
    for url, future in replies:
        try:
            reply = future.result()
        except FetchFailed as error:
            result.add(skipped(url, str(error)), url)
            continue
        if reply.kind != "feed":
            pages.append((url, future, None))
            continue
        for entry in feed_entries(reply, result):
            if entry["link"] not in seen:
                seen.add(entry["link"])
                pages.append((entry["link"], fetch_later(entry["link"]), entry))
    for url, future, entry in pages:
        try:
            reply = future.result()
        except FetchFailed as error:
            result.add(skipped(url, str(error)), url)
            continue
        result.add(read_page(url, reply, entry, max_article_mb), url)


def skipped(url: str, reason: str) -> Skipped:
    """A URL that gave no article; credentials in it are not repeated on screen."""
    return Skipped(mask_secrets(url), reason)


def fetch(client, url: str, settings: FetchSettings) -> Reply:
    """The reply at `url`, read whole within the deadline and the size limit."""
    import httpx

    deadline = time.monotonic() + settings.timeout
    limit = int(settings.max_page_mb * 1_000_000)
    try:
        with client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise FetchFailed(f"HTTP {response.status_code} {response.reason_phrase}".strip())
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchFailed(page_too_large(int(declared), settings))
            body = bytearray()
            # The client's timeout bounds each read; a server that trickles bytes is bounded here.
            for piece in response.iter_bytes():
                body += piece
                if len(body) > limit:
                    raise FetchFailed(page_too_large(len(body), settings))
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("deadline passed")
            content_type = response.headers.get("content-type", "")
            return Reply(
                url=str(response.url),
                content_type=content_type.split(";")[0].strip().lower(),
                charset=response.charset_encoding,
                body=bytes(body),
            )
    except httpx.TimeoutException:
        raise FetchFailed(
            f"no complete reply within {settings.timeout:g}s (QA_FETCH_TIMEOUT)"
        ) from None
    except httpx.TooManyRedirects:
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.ConnectError as error:
        raise FetchFailed(f"cannot connect: {short_reason(error)}") from None
    except httpx.HTTPError as error:
        raise FetchFailed(f"download failed: {short_reason(error)}") from None


def page_too_large(size: int, settings: FetchSettings) -> str:
    return (
        f"{size / 1_000_000:.1f} MB is over the {settings.max_page_mb:g} MB limit for a page "
        "(QA_MAX_PAGE_MB)"
    )


def short_reason(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def feed_entries(reply: Reply, result: LoadResult) -> list[dict]:
    """The linked entries of a feed, each with its title and date; problems go to `result`."""
    import feedparser

    parsed = feedparser.parse(reply.body, response_headers={"content-location": reply.url})
    linked = [entry for entry in parsed.entries if is_url(entry.get("link") or "")]
    # feedparser reads what it can of a broken feed; without one linked entry it is no feed.
    if not parsed.version or (parsed.bozo and not linked):
        problem = parsed.get("bozo_exception")
        reason = f": {short_reason(problem)}" if problem else ""
        result.add(skipped(reply.url, f"not a valid RSS or Atom feed{reason}"), reply.url)
        return []
    if not parsed.entries:
        result.add(skipped(reply.url, "the feed has no entries"), reply.url)
    feed_title = parsed.feed.get("title")
    entries = []
    for number, entry in enumerate(parsed.entries, start=1):
        if entry not in linked:
            result.add(skipped(f"{reply.url} entry {number}", "the entry has no link"), reply.url)
            continue
        published = entry.get("published_parsed") or entry.get("updated_parsed")
        entries.append(
            {
                "link": entry["link"],
                "title": entry.get("title"),
                "date": time.strftime("%Y-%m-%d", published) if published else None,
                "source": feed_title,
            }
        )
    return entries


def read_page(url: str, reply: Reply, entry: dict | None, max_article_mb: float):
    """The article in a fetched page, or why there is none."""
    from qa.html_article import extract_article

    kind = reply.kind
    if kind == "feed":
        return skipped(url, "a feed where an article page was expected")
    if kind != "html":
        return skipped(url, f"not an HTML page or a feed ({kind})")
    page = extract_article(reply.html(), url=reply.url)
    if page is None:
        return skipped(url, "no article text found in the page")
    if len(page.text) > max_article_mb * 1_000_000:
        return skipped(url, too_large(len(page.text), max_article_mb))
    entry = entry or {}
    return article_from_page(
        page,
        article_id=article_id(reply.url),
        location=url,
        title=entry.get("title"),
        day=normalise_date(entry.get("date")),
        source=entry.get("source") or urlsplit(reply.url).hostname,
    )


class _Counter:
    """Fetches done out of fetches known, reported from the worker threads."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.done = 0
        self.total = 0
        self.lock = threading.Lock()

    def add_total(self, count: int) -> None:
        with self.lock:
            self.total += count
            self._report()

    def add_done(self, count: int) -> None:
        with self.lock:
            self.done += count
            self._report()

    def _report(self) -> None:
        if self.progress:
            self.progress(self.done, self.total)
