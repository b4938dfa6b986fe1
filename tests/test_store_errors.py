"""A Chroma failure while a collection is being created is one clear line, and the next ingest
finishes what the failed one began."""

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

import pytest

from tests.conftest import SEEDS
from tests.servers import serve_http

pytestmark = pytest.mark.server

# Headers that belong to one hop, which the proxy below does not pass on.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class DroppingProxy:
    url: str = ""
    dropping: bool = True


@contextmanager
def dropping_creates(upstream: str, collection: str) -> Iterator[DroppingProxy]:
    """A proxy to the Chroma server at `upstream` that hangs up, unanswered, on each request to
    create `collection` while `dropping`."""
    target = urlparse(upstream)
    proxy = DroppingProxy()

    class Proxy(BaseHTTPRequestHandler):
        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if proxy.dropping and self.creates(body):
                self.close_connection = True
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            reply = connection.getresponse()
            content = reply.read()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            connection.close()

        def creates(self, body: bytes) -> bool:
            if self.command != "POST" or not self.path.endswith("/collections"):
                return False
            return json.loads(body or b"{}").get("name") == collection

        do_GET = do_POST = do_PUT = do_DELETE = forward

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Proxy) as url:
        proxy.url = url
        yield proxy


def test_a_dropped_connection_while_creating_the_collection_is_one_line(run, chroma_server):
    with dropping_creates(chroma_server, "dropped") as proxy:
        url = proxy.url
        failed = run("ingest", SEEDS, "--chroma-url", url, "--collection", "dropped")
        assert failed.exit_code == 1
        assert len(failed.stderr.strip().splitlines()) == 1
        assert f"Lost the connection to the Chroma server at {url}" in failed.stderr
        assert "Traceback" not in failed.output
        proxy.dropping = False
        again = run("ingest", SEEDS, "--chroma-url", url, "--collection", "dropped", "--json")
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["added"] == ["000_0ae6590b4ea8367e"]


def test_a_dropped_connection_while_creating_the_article_records_is_one_line(run, chroma_server):
    with dropping_creates(chroma_server, "records-dropped__articles") as proxy:
        url = proxy.url
        failed = run("ingest", SEEDS, "--chroma-url", url, "-c", "records-dropped")
        assert failed.exit_code == 1
        assert len(failed.stderr.strip().splitlines()) == 1
        assert f"Lost the connection to the Chroma server at {url}" in failed.stderr
        assert "Traceback" not in failed.output
        # The chunk collection was made; the next ingest makes the records and writes them.
        proxy.dropping = False
        again = run("ingest", SEEDS, "--chroma-url", url, "-c", "records-dropped", "--json")
        assert again.exit_code == 0, again.output
        listed = run("sources", "--chroma-url", url, "-c", "records-dropped", "--json")
        assert [a["id"] for a in json.loads(listed.stdout)] == ["000_0ae6590b4ea8367e"]
