"""Without importing chromadb: an embedded store read through Chroma's core alone, a server
read and written through qa's own HTTP client. Each gives the passages and records
chromadb's client gives, a server's collections are the ones chromadb's client makes, and a
server that fails mid-question or mid-ingest is one clear line."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from qa.chroma_gateway import ChromaGateway
from qa.chroma_local import fits
from qa.keyword_index import CATCH_UP_EVERY_SECONDS
from qa.settings import get_settings
from qa.store import Store
from qa.workspace import Workspace
from tests.conftest import KREMLIN_QUESTION, SEEDS, ask_importing_none_of, run_importing_none_of
from tests.servers import serve_proxy

pytestmark = pytest.mark.server

ARTICLES = [
    ("harbor", "Harbor town opens solar ferry line", "2024-03-01",
     "The harbor town of Kestrel opened a solar ferry line on Friday. The ferry carries "
     "120 passengers across the bay in twenty minutes, powered by panels on its roof."),
    ("budget", "City council passes the school budget", "2024-04-12",
     "The city council passed a school budget of 41 million dollars after a long debate. "
     "Teachers will get a raise of three percent from September."),
    ("storm", "Storm closes the coastal road", "2024-05-20",
     "A spring storm closed the coastal road for two days. Crews cleared fallen trees and "
     "the road reopened on Sunday morning."),
]  # fmt: skip


def write_articles(folder: Path) -> Path:
    corpus = folder / "articles.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": id_, "title": title, "date": date, "text": text}) + "\n"
            for id_, title, date, text in ARTICLES
        )
    )
    return corpus


@pytest.fixture
def collection(run, chroma_server, tmp_path, request):
    """A collection on the server holding the seed and three short articles."""
    name = "reader-" + request.node.name[-20:].strip("_").replace("_", "-")
    for source in (SEEDS, write_articles(tmp_path)):
        result = run("ingest", source, "--chroma-url", chroma_server, "-c", name)
        assert result.exit_code == 0, result.output
    return name


@pytest.fixture(params=["embedded", "server"])
def stores(request, run, tmp_path) -> tuple[Store, Store]:
    """The same collection opened to ask (qa's reader) and by chromadb's client, embedded or
    on a server."""
    options = {}
    if request.param == "server":
        options = {"chroma_url": request.getfixturevalue("chroma_server"), "collection": "both"}
    flags = ["--chroma-url", options["chroma_url"], "-c", "both"] if options else []
    for source in (SEEDS, write_articles(tmp_path)):
        result = run("ingest", source, *flags)
        assert result.exit_code == 0, result.output
    settings = get_settings(**options)
    reader = Store.open(settings, create=False, reading=True)
    assert type(reader.chroma.reader).__module__ in ("qa.chroma_local", "qa.chroma_http")
    if not options:
        return reader, Store.open(settings, create=False)
    client = chromadb_client(options["chroma_url"])
    return reader, Store(ChromaGateway(client, options["chroma_url"]), "both", tmp_path / "index")


def chromadb_client(url: str):
    import chromadb
    from chromadb.config import Settings

    host, port = url.removeprefix("http://").split(":")
    return chromadb.HttpClient(host, int(port), settings=Settings(anonymized_telemetry=False))


def fits_this_core() -> bool:
    import chromadb_rust_bindings

    return fits(chromadb_rust_bindings)


def test_this_chroma_is_read_without_chromadb():
    assert fits_this_core(), "Chroma's core changed: qa.chroma_local must be checked against it"


def test_the_reader_finds_what_chromadb_finds(stores):
    reader, chromadb_store = stores
    assert reader.collection_id() == chromadb_store.collection_id()
    assert reader.recorded_settings() == chromadb_store.recorded_settings()
    assert not reader.is_empty()
    assert reader.chunk_count() == chromadb_store.chunk_count()
    assert reader.articles() == chromadb_store.articles()
    assert list(reader.records_written_since(0)) == list(chromadb_store.records_written_since(0))
    assert reader.article("storm") == chromadb_store.article("storm")
    ids = ["harbor", "budget", "000_0ae6590b4ea8367e"]
    assert reader.chunk_versions(ids) == chromadb_store.chunk_versions(ids)
    vector = chromadb_store.chunks(chromadb_store.chunk_ids()[:1])[0].vector
    for dates in ({}, {"as_of": "2024-04-30"}, {"since": "2024-04-01", "as_of": "2024-04-30"}):
        near, expected = reader.query(vector, 4, **dates), chromadb_store.query(vector, 4, **dates)
        assert [(h.chunk_id, h.text, h.meta) for h in near] == [
            (h.chunk_id, h.text, h.meta) for h in expected
        ]
        assert [h.distance for h in near] == pytest.approx([h.distance for h in expected])
    assert {h.meta.article_id for h in reader.query(vector, 4, as_of="2024-04-30")} <= {
        "harbor", "budget", "000_0ae6590b4ea8367e"
    }  # fmt: skip
    some = chromadb_store.chunk_ids()[:5]
    read, expected = reader.chunks(some), chromadb_store.chunks(some)
    assert [(h.chunk_id, h.text, h.meta) for h in read] == [
        (h.chunk_id, h.text, h.meta) for h in expected
    ]
    for got, want in zip(read, expected, strict=True):
        assert np.array_equal(np.asarray(got.vector), np.asarray(want.vector))


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_asking_does_not_import_chromadb(where, run, request):
    env = dict(os.environ)
    if where == "server":
        env |= {"QA_CHROMA_URL": request.getfixturevalue("chroma_server"), "QA_COLLECTION": "ask"}
    assert run("ingest", SEEDS, *(["--chroma-url", env["QA_CHROMA_URL"], "-c", "ask"]
                                  if where == "server" else [])).exit_code == 0  # fmt: skip
    ask = ask_importing_none_of(("chromadb",), env)
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert "755" in answer["answer"]
    assert answer["citations"][0]["article_id"] == "000_0ae6590b4ea8367e"


def test_ingesting_into_a_server_does_not_import_chromadb(chroma_server, tmp_path):
    env = os.environ | {"QA_CHROMA_URL": chroma_server, "QA_COLLECTION": "written"}
    ingest = run_importing_none_of(["ingest", str(write_articles(tmp_path))], ("chromadb",), env)
    assert ingest.returncode == 0, ingest.stderr
    settings = get_settings(chroma_url=chroma_server, collection="written")
    assert sorted(a.id for a in Store.open(settings).articles()) == ["budget", "harbor", "storm"]


def test_a_servers_collections_are_the_ones_chromadb_makes(chroma_server, collection):
    """Made by qa's client, read by chromadb's: the same configuration and records as when
    chromadb's client makes them, so chromadb reads what qa wrote as its own."""
    client = chromadb_client(chroma_server)
    made = client.create_collection(
        "by-chromadb", metadata={"k": 1}, configuration={"hnsw": {"space": "cosine"}}
    )
    records = client.get_or_create_collection("by-chromadb__articles")
    ours = client.get_collection(collection)
    assert ours.configuration_json == made.configuration_json
    assert ours.configuration_json["hnsw"]["space"] == "cosine"
    ours_records = client.get_collection(collection + "__articles")
    assert ours_records.configuration_json == records.configuration_json
    settings = get_settings(chroma_url=chroma_server, collection=collection)
    assert ours.count() == Store.open(settings).chunk_count()
    stored = ours.get(where={"article_id": "harbor"}, include=["embeddings", "documents"])
    assert "solar ferry line" in stored["documents"][0]
    assert np.linalg.norm(stored["embeddings"][0]) == pytest.approx(1.0, abs=1e-5)


def test_a_workspace_finds_what_it_ingested_after_asking(tmp_path):
    """An embedded store's reader keeps its own copy of the vector index: after the workspace
    writes, its next question must see the new chunks, by meaning alone too."""
    workspace = Workspace(get_settings(retrieval="dense"))
    workspace.ingest([SEEDS])
    assert "755" in workspace.ask(KREMLIN_QUESTION).answer().text
    workspace.ingest([write_articles(tmp_path)])
    answer = workspace.ask("How many passengers does the solar ferry carry?").answer()
    assert "120 passengers" in answer.text
    assert answer.citations[0].article_id == "harbor"


def test_a_workspace_that_asked_a_server_can_still_reset_it(chroma_server, collection):
    settings = get_settings(chroma_url=chroma_server, collection=collection)
    workspace = Workspace(settings)
    assert (
        "120 passengers" in workspace.ask("How many passengers does the ferry carry?").answer().text
    )
    assert workspace.reset() == 4
    assert Store.open(settings).articles() == []


@contextmanager
def chroma_behind(upstream: str, answer, ending: str = "/query") -> Iterator[str]:
    """A loopback proxy to the Chroma server at `upstream` that passes every call on, but
    lets `answer` answer those whose path ends with `ending` (the nearest-neighbour queries
    unless told)."""

    def calls(handler: BaseHTTPRequestHandler, body: bytes) -> bool:
        if handler.path.endswith(ending):
            answer(handler)
            return True
        return False

    with serve_proxy(upstream, calls) as url:
        yield url


def never_answer(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(5)


def answer_with_a_gateway_page(handler: BaseHTTPRequestHandler) -> None:
    page = b"<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n"
    handler.send_response(502)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", str(len(page)))
    handler.end_headers()
    handler.wfile.write(page)


def test_a_server_that_stops_answering_mid_question_is_one_line(
    run, chroma_server, collection, monkeypatch
):
    monkeypatch.setenv("QA_CHROMA_TIMEOUT", "1")
    with chroma_behind(chroma_server, never_answer) as url:
        result = run("ask", KREMLIN_QUESTION, "--chroma-url", url, "-c", collection)
    assert result.exit_code == 1
    assert f"The Chroma server at {url} did not answer in time" in result.stderr
    assert "QA_CHROMA_TIMEOUT" in result.stderr
    assert "Traceback" not in result.output


def test_a_proxy_error_page_mid_question_is_one_line(run, chroma_server, collection):
    with chroma_behind(chroma_server, answer_with_a_gateway_page) as url:
        result = run("ask", KREMLIN_QUESTION, "--chroma-url", url, "-c", collection)
    assert result.exit_code == 1
    assert "HTTP 502: <html> <body> <h1>502 Bad Gateway</h1>" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_server_that_stops_answering_mid_ingest_is_one_line_and_loses_nothing(
    run, chroma_server, collection, tmp_path, monkeypatch
):
    monkeypatch.setenv("QA_CHROMA_TIMEOUT", "1")
    more = tmp_path / "more.jsonl"
    tram = {"id": "tram", "title": "New tram line", "date": "2024-06-01",
            "text": "The new tram line to the airport opened in June."}  # fmt: skip
    more.write_text(json.dumps(tram) + "\n")
    with chroma_behind(chroma_server, never_answer, "/upsert") as url:
        result = run("ingest", more, "--chroma-url", url, "-c", collection)
    assert result.exit_code == 1
    assert f"The Chroma server at {url} did not answer in time" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    result = run("ingest", more, "--chroma-url", chroma_server, "-c", collection)
    assert result.exit_code == 0, result.output
    store = Store.open(get_settings(chroma_url=chroma_server, collection=collection))
    assert sorted(a.id for a in store.articles()) == [
        "000_0ae6590b4ea8367e",
        "budget",
        "harbor",
        "storm",
        "tram",
    ]
    answer = run("ask", "When did the tram line to the airport open?", "--json",
                 "--chroma-url", chroma_server, "-c", collection)  # fmt: skip
    assert json.loads(answer.stdout)["citations"][0]["article_id"] == "tram"


def test_a_long_running_reader_finds_what_another_process_ingested(tmp_path):
    """A reader of an embedded store keeps the vector index it loaded: once another process
    records articles, its next question opens the store again, so they are found by meaning."""
    workspace = Workspace(get_settings(retrieval="dense"))
    workspace.ingest([SEEDS])
    assert "755" in workspace.ask(KREMLIN_QUESTION).answer().text
    ingest = subprocess.run(
        [sys.executable, "-m", "qa", "ingest", str(write_articles(tmp_path))],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    time.sleep(CATCH_UP_EVERY_SECONDS)
    answer = workspace.ask("How many passengers does the solar ferry carry?").answer()
    assert "120 passengers" in answer.text
    assert answer.citations[0].article_id == "harbor"
