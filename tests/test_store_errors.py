"""A Chroma failure while a collection is being created is one clear line, and the next ingest
finishes what the failed one began."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

import pytest

from tests.conftest import SEEDS
from tests.servers import serve_proxy

pytestmark = pytest.mark.server


@dataclass
class DroppingProxy:
    url: str = ""
    dropping: bool = True


@contextmanager
def dropping_creates(upstream: str, collection: str) -> Iterator[DroppingProxy]:
    """A proxy to the Chroma server at `upstream` that hangs up, unanswered, on each request to
    create `collection` while `dropping`."""
    proxy = DroppingProxy()

    def drop_creates(handler: BaseHTTPRequestHandler, body: bytes) -> bool:
        creates = handler.command == "POST" and handler.path.endswith("/collections")
        if proxy.dropping and creates and json.loads(body or b"{}").get("name") == collection:
            handler.close_connection = True
            return True
        return False

    with serve_proxy(upstream, drop_creates) as url:
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
