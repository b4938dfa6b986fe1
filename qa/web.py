"""Fetch news pages and RSS/Atom feeds over HTTP and read the articles in them."""

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from qa import settings as fetch_settings
from qa.errors import InputError
from qa.feed_state import state_path
from qa.loading import LoadResult, Skipped, article_from_page, normalise_date, too_large
from qa.masking import mask_secrets
from qa.settings import Settings

if TYPE_CHECKING:
    from ssl import SSLContext

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
# A fetch ends itself at its deadline; this much later it is abandoned wherever it hangs (a name
# lookup, which no timeout bounds).
ABANDON_AFTER = 1.0
# The most a DNS name and each of its labels may hold.
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63


def user_agent() -> str:
    try:
        release = version("qa-news")
    except PackageNotFoundError:
        release = "dev"
    return f"qa-news/{release} (news question answering; +https://pypi.org/project/qa-news/)"


def agent_token() -> str:
    """The name robots.txt rules address qa by."""
    return user_agent().split("/")[0]


class FetchSettings(fetch_settings.FetchSettings):
    """The fetch settings, and where what was fetched is remembered (`state_file`; None:
    nowhere, everything is fetched)."""

    state_file: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> "FetchSettings":
        return cls(**settings.fetch.model_dump(), state_file=state_path(settings))


@dataclass(frozen=True)
class Reply:
    """A page or feed as fetched: where it ended up after redirects, and its bytes; `status`
    304 (no body) when it has not changed since the version its validators name."""

    url: str
    content_type: str
    charset: str | None
    body: bytes
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None

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
    """One URL could not be read; the message is the reason shown beside it.

    `status` is the HTTP status of a refusal, `retry_after` its Retry-After header, and
    `refused` says the address was not one a link may reach.
    """

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        retry_after: str | None = None,
        refused: bool = False,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after
        self.refused = refused


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def check_urls(urls: Iterable[str]) -> None:
    """Refuse malformed URLs before anything is fetched."""
    bad = [f"{mask_secrets(url)} ({problem})" for url in urls if (problem := url_problem(url))]
    if bad:
        raise InputError(
            f"Not a valid URL: {', '.join(bad)}.", "Example: https://example.com/feed.xml"
        )


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched as written, or None when it can."""
    import httpx

    if any(char.isspace() or not char.isprintable() for char in url):
        return "it holds a space or a control character; write a space as %20"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return lowercase_first(str(error))
    if parts.scheme.lower() not in ("http", "https"):
        return "only http and https URLs are fetched"
    if not parts.hostname:
        return "no host name"
    if port == 0:
        return "port 0"
    labels = parts.hostname.removesuffix(".").split(".")
    if len(parts.hostname) > MAX_HOST_CHARS or any(
        len(label) > MAX_LABEL_CHARS for label in labels
    ):
        return "the host name is too long"
    if "" in labels:
        return "an empty part in the host name"
    try:
        # The client's own reading of the URL, IDNA host names and IPv6 literals included
        # (an A-label is checked only when the host is read back).
        httpx.URL(url).host  # noqa: B018 - read for the check, not the value
    except (httpx.InvalidURL, UnicodeError) as error:
        return lowercase_first(short_reason(error))
    return None


def lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def article_id(url: str) -> str:
    """A stable, readable id: the URL without scheme, `www.`, fragment or trailing slash."""
    parts = urlsplit(url)
    host = (parts.netloc or "").lower().removeprefix("www.")
    return urlunsplit(("", host, parts.path.rstrip("/"), parts.query, "")).removeprefix("//")


def skipped(url: str, reason: str) -> Skipped:
    """A URL that gave no article; credentials in it are not repeated on screen."""
    return Skipped(mask_secrets(url), reason)


def fetch(
    url: str,
    settings: FetchSettings,
    typed: str,
    ssl_context: "SSLContext",
    conditions: dict[str, str] | None = None,
    on_request: Callable[[], None] | None = None,
) -> Reply:
    """The reply at `url`, read whole within the deadline and the size limit.

    `url` may reach a private address only on the host and port of `typed`, the URL given on
    the command line, unless `settings.allow_private`. `conditions` are the If-None-Match /
    If-Modified-Since headers of a version already held; `on_request` is called for every
    request sent, redirects included. Nothing of the fetch outlives its deadline by more than
    ABANDON_AFTER.
    """
    problem = url_problem(url)
    if problem:
        raise FetchFailed(f"not a valid URL: {problem}")
    outcome: Future = Future()

    def attempt() -> None:
        try:
            outcome.set_result(
                download(url, settings, typed, ssl_context, conditions or {}, on_request)
            )
        # Whatever it raises, the waiting thread raises in turn.
        except BaseException as error:
            outcome.set_exception(error)

    # A daemon thread: one stuck past its deadline never holds up the exit of qa.
    threading.Thread(target=attempt, daemon=True).start()
    wait([outcome], timeout=settings.timeout + ABANDON_AFTER)
    if not outcome.done():
        raise FetchFailed(no_reply_in_time(settings))
    return outcome.result()


def download(
    url: str,
    settings: FetchSettings,
    typed: str,
    ssl_context: "SSLContext",
    conditions: dict[str, str],
    on_request: Callable[[], None] | None,
) -> Reply:
    """The reply at `url`, its connections opened only where `typed` allows."""
    import httpx

    from qa.fetch_guard import GuardedBackend, GuardedTransport, Origin, RefusedAddress

    deadline = time.monotonic() + settings.timeout
    backend = GuardedBackend(deadline, Origin.of(typed), settings.allow_private)
    hooks = {"request": [lambda _: on_request()]} if on_request else {}
    try:
        with httpx.Client(
            transport=GuardedTransport(backend, ssl_context),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=settings.timeout,
            headers={"User-Agent": user_agent()},
            event_hooks=hooks,
        ) as client:
            return read_reply(client, url, settings, conditions)
    except RefusedAddress as error:
        raise FetchFailed(str(error), refused=True) from None
    except httpx.TimeoutException:
        raise FetchFailed(no_reply_in_time(settings)) from None
    except httpx.TooManyRedirects:
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.ConnectError as error:
        raise FetchFailed(f"cannot connect: {short_reason(error)}") from None
    except httpx.RemoteProtocolError as error:
        raise FetchFailed(protocol_problem(error)) from None
    except httpx.HTTPError as error:
        raise FetchFailed(f"download failed: {short_reason(error)}") from None
    except (httpx.InvalidURL, UnicodeError) as error:
        # A redirect to a URL the client cannot read.
        raise FetchFailed(f"redirected to an invalid URL: {short_reason(error)}") from None


def read_reply(client, url: str, settings: FetchSettings, conditions: dict[str, str]) -> Reply:
    limit = int(settings.max_page_mb * 1_000_000)
    with client.stream("GET", url, headers=conditions) as response:
        headers = response.headers
        validators = {"etag": headers.get("etag"), "last_modified": headers.get("last-modified")}
        if response.status_code == 304 and conditions:
            return Reply(str(response.url), "", None, b"", status=304, **validators)
        if response.status_code >= 400 or response.status_code == 304:
            raise FetchFailed(
                f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                status=response.status_code,
                retry_after=headers.get("retry-after"),
            )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchFailed(page_too_large(int(declared), settings))
        body = bytearray()
        # Counted as decoded, so a compressed reply cannot unpack past the limit either.
        for piece in response.iter_bytes():
            body += piece
            if len(body) > limit:
                raise FetchFailed(page_too_large(len(body), settings))
        content_type = headers.get("content-type", "")
        return Reply(
            url=str(response.url),
            content_type=content_type.split(";")[0].strip().lower(),
            charset=response.charset_encoding,
            body=bytes(body),
            **validators,
        )


def no_reply_in_time(settings: FetchSettings) -> str:
    return f"no complete reply within {settings.timeout:g}s (QA_FETCH_TIMEOUT)"


def protocol_problem(error: Exception) -> str:
    # h11, under httpx, stops reading headers past its buffer; it says so in its own words.
    if "Receive buffer too long" in str(error):
        return "the reply's headers are too long (over 100 KB)"
    return f"download failed: {short_reason(error)}"


def page_too_large(size: int, settings: FetchSettings) -> str:
    return (
        f"{size / 1_000_000:.1f} MB is over the {settings.max_page_mb:g} MB limit for a page "
        "(QA_MAX_PAGE_MB)"
    )


def short_reason(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def feed_entries(reply: Reply, result: LoadResult) -> list[dict]:
    """The linked entries of a feed, each with its title, date, identity (`key`: its GUID, else
    its link) and the time it was last updated; problems with entries go to `result`.

    Raises FetchFailed when the reply is no feed at all.
    """
    import feedparser

    parsed = feedparser.parse(reply.body, response_headers={"content-location": reply.url})
    linked = [entry for entry in parsed.entries if is_url(entry.get("link") or "")]
    # feedparser reads what it can of a broken feed; without one linked entry it is no feed.
    if not parsed.version or (parsed.bozo and not linked):
        problem = parsed.get("bozo_exception")
        reason = f": {short_reason(problem)}" if problem else ""
        raise FetchFailed(f"not a valid RSS or Atom feed{reason}")
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
                "key": entry.get("id") or entry["link"],
                "updated": entry_updated(entry),
            }
        )
    return entries


def entry_updated(entry: dict) -> str | None:
    """When the entry says it last changed, as UTC text (its own words when unparsable)."""
    # Read as a plain dict: feedparser answers a missing `updated` with `published`, and warns.
    parsed = dict.get(entry, "updated_parsed") or entry.get("published_parsed")
    if parsed:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", parsed)
    return dict.get(entry, "updated") or entry.get("published") or None


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
    # The id is where the page was read, never a URL the page claims for itself.
    article = article_from_page(
        page,
        article_id=article_id(reply.url),
        location=url,
        title=entry.get("title"),
        day=normalise_date(entry.get("date")),
        source=entry.get("source") or urlsplit(reply.url).hostname,
    )
    if page.canonical_url:
        article = replace(article, extra={**article.extra, "canonical_url": page.canonical_url})
    return article
