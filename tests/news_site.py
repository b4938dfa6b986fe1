"""A news site on loopback for web-ingest tests: pages, feeds, and every way a fetch fails."""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from html import escape
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.servers import serve_http

PAGES = Path(__file__).parent / "pages"


@dataclass
class Route:
    """One reply: status, content type and body; `delay` before it, or a body that trickles.

    With `etag` or `last_modified` the reply carries that validator, and a request naming it
    (If-None-Match, If-Modified-Since) is answered 304 Not Modified; `headers` are sent too.
    """

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    delay: float = 0.0
    trickle: float = 0.0
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def not_modified(self, request_headers) -> bool:
        if self.status != 200:
            return False
        tags = request_headers.get("If-None-Match")
        if self.etag and tags:
            return self.etag in [tag.strip() for tag in tags.split(",")]
        since = request_headers.get("If-Modified-Since")
        if self.last_modified and since:
            with suppress(TypeError, ValueError):
                return parsedate_to_datetime(self.last_modified) <= parsedate_to_datetime(since)
        return False


@dataclass(frozen=True)
class Hit:
    """One request the site answered: path, request headers, status, and when (monotonic)."""

    path: str
    headers: dict[str, str]
    status: int
    started: float
    finished: float


@dataclass
class NewsSite:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    def page(self, path: str, html: str) -> str:
        self.routes[path] = Route(html.encode())
        return self.url(path)


@contextmanager
def serve_news_site() -> Iterator[NewsSite]:
    site = NewsSite()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            started = time.monotonic()
            site.requests.append(self.path)
            route = site.routes.get(self.path, Route(b"<h1>Not found</h1>", status=404))
            time.sleep(route.delay)
            status = 304 if route.not_modified(self.headers) else route.status
            body = b"" if status == 304 else route.body
            self.send_response(status)
            if route.location:
                self.send_header("Location", route.location)
            for name, value in (("ETag", route.etag), ("Last-Modified", route.last_modified)):
                if value:
                    self.send_header(name, value)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if not route.trickle:
                    self.wfile.write(body)
                    return
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(route.trickle)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                headers = dict(self.headers.items())
                site.hits.append(Hit(self.path, headers, status, started, time.monotonic()))

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Handler) as base:
        site.base = base
        yield site


@contextmanager
def serve_raw(reply: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that answers each connection with `reply(connection)`, byte by byte
    as it likes, for replies http.server cannot send; yields the base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    open_connections: list[socket.socket] = []

    def answer(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                reply(connection)
            except OSError:
                pass  # the client gave up, or the server is closing

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            open_connections.append(connection)
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        # shutdown, not only close, wakes the thread waiting in accept().
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        # A reply still trickling ends now rather than whenever its script does.
        for connection in open_connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def saved_page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def rss(entries: list[dict], title: str = "Loopback News") -> bytes:
    """An RSS 2.0 feed; each entry has `link` and optionally `title` and `date` (YYYY-MM-DD)."""
    items = []
    for entry in entries:
        parts = [f"<link>{escape(entry['link'])}</link>"]
        if entry.get("title"):
            parts.append(f"<title>{escape(entry['title'])}</title>")
        if entry.get("date"):
            day = datetime.fromisoformat(entry["date"]).replace(hour=12, tzinfo=UTC)
            parts.append(f"<pubDate>{format_datetime(day)}</pubDate>")
        items.append(f"<item>{''.join(parts)}</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://127.0.0.1/</link>"
        f"<description>Test feed</description>{''.join(items)}</channel></rss>"
    ).encode()


def atom(entries: list[dict], title: str = "Loopback News") -> bytes:
    items = "".join(
        f"<entry><title>{escape(entry.get('title', ''))}</title>"
        f'<link href="{escape(entry["link"])}"/><id>{escape(entry["link"])}</id>'
        f"<updated>{entry.get('date', '2024-01-01')}T12:00:00Z</updated></entry>"
        for entry in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:loopback</id>"
        f"<updated>2024-01-01T12:00:00Z</updated>{items}</feed>"
    ).encode()
