"""Embeddings from an OpenAI-compatible server (QA_EMBEDDINGS=openai), apart from the chat
model's: the same passages as local embedding, requests in flight, batches, keys, failures."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.embeddings import get_embedder
from qa.onnx_embedder import OnnxEmbedder
from qa.settings import get_settings
from tests.conftest import KREMLIN_QUESTION, ROOT, SEED_ARTICLE, SEEDS
from tests.embedding_server import MODEL, EmbeddingServer, serve_embeddings
from tests.servers import SERVED_MODEL, serve_scripted
from tests.test_llm import assert_one_line_error

DEV_HALF = ROOT.parent / "shared" / "bench" / "realtimeqa"
DEV_QUESTIONS = 4
DISTRACTORS = 4
EMBEDDING_KEY = "emb-key-7f3a9c2e51d4"
OPENAI_KEY = "sk-chat-4b8e1d6a0c93"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[str]]:
    """The seed article and a few articles of the RealTime QA dev half, with questions about
    them."""
    if not DEV_HALF.is_dir():
        pytest.skip(f"needs the shared benchmarks in {DEV_HALF}")
    folder = tmp_path_factory.mktemp("corpus")
    shutil.copy(SEED_ARTICLE, folder)
    lines = (DEV_HALF / "corpus.jsonl").read_text().splitlines()
    articles = {json.loads(line)["id"]: line for line in lines}
    questions = [json.loads(line) for line in (DEV_HALF / "questions.jsonl").open()]
    gold = [q for q in questions if q["evidence_label"] == "official_gold"][:DEV_QUESTIONS]
    wanted = [id_ for question in gold for id_ in question["article_ids"]]
    wanted += [id_ for id_ in articles if id_ not in wanted][:DISTRACTORS]
    (folder / "dev.jsonl").write_text("".join(articles[id_] + "\n" for id_ in wanted))
    return folder, [KREMLIN_QUESTION, *(question["question"] for question in gold)]


@pytest.fixture
def server():
    """A loopback server embedding with the bundled model itself."""
    with serve_embeddings(EmbeddingServer()) as running:
        yield running


def embed_with(monkeypatch, url: str, **env: str) -> None:
    monkeypatch.setenv("QA_EMBEDDINGS", "openai")
    monkeypatch.setenv("QA_EMBEDDING_BASE_URL", url)
    # The bundled model's name, so the collection says which vectors it holds.
    monkeypatch.setenv("QA_EMBEDDING_MODEL", MODEL)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def ingest_json(run, *sources) -> dict:
    result = run("ingest", *sources, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def found(run, questions: list[str]) -> list[tuple[list[str], str]]:
    """Each question's passages, best first, and its extractive answer."""
    answers = []
    for question in questions:
        result = run("ask", question, "--json", "--llm", "extractive")
        assert result.exit_code == 0, result.output
        reply = json.loads(result.stdout)
        answers.append(([passage["chunk_id"] for passage in reply["passages"]], reply["answer"]))
    return answers


def test_through_an_embeddings_server_questions_find_what_local_embedding_finds(
    run, corpus, server, monkeypatch, tmp_path
):
    folder, questions = corpus
    ingest_json(run, folder)
    local = found(run, questions)
    monkeypatch.setenv("QA_HOME", str(tmp_path / "served"))
    embed_with(monkeypatch, server.url)
    report = ingest_json(run, folder)
    assert sum(server.batch_sizes) == report["chunks_embedded"] > 32
    assert found(run, questions) == local


def test_vectors_listed_out_of_order_are_put_back_in_the_order_of_the_texts(monkeypatch):
    texts = ["The Kremlin", "A solar ferry line", "Bond yields rose", "The striker scored"]
    with serve_embeddings(EmbeddingServer(faults=["shuffled"] * 4)) as server:
        embed_with(monkeypatch, server.url, QA_EMBEDDING_BATCH_SIZE="2")
        served = get_embedder(get_settings()).embed_documents(texts)
    local = OnnxEmbedder(MODEL, get_settings().model_cache_dir).embed_documents(texts)
    assert server.batch_sizes == [2, 2]
    np.testing.assert_allclose(served, local, atol=1e-6)


@pytest.mark.parametrize(("setting", "in_flight"), [(None, 4), ("3", 3)])
def test_requests_in_flight_reach_the_concurrency_setting_and_never_pass_it(
    run, corpus, monkeypatch, setting, in_flight
):
    with serve_embeddings(EmbeddingServer(hold_until=in_flight)) as server:
        embed_with(monkeypatch, server.url, QA_EMBEDDING_BATCH_SIZE="4")
        if setting:
            monkeypatch.setenv("QA_EMBEDDING_CONCURRENCY", setting)
        ingest_json(run, corpus[0])
    assert server.max_in_flight == in_flight


@pytest.mark.parametrize(("setting", "batch"), [(None, 32), ("5", 5)])
def test_no_request_carries_more_texts_than_the_batch_size(
    run, corpus, server, monkeypatch, setting, batch
):
    embed_with(monkeypatch, server.url)
    if setting:
        monkeypatch.setenv("QA_EMBEDDING_BATCH_SIZE", setting)
    report = ingest_json(run, corpus[0])
    assert max(server.batch_sizes) == batch
    assert sum(server.batch_sizes) == report["chunks_embedded"]


def test_embeddings_and_chat_each_go_to_their_own_server(run, server, monkeypatch):
    with serve_scripted([(200, "The Kremlin said 755 people must go. [1]")]) as chat:
        monkeypatch.setenv("OPENAI_BASE_URL", chat.url)
        embed_with(monkeypatch, server.url)
        ingest_json(run, SEEDS)
        embedded = server.requests
        result = run("ask", KREMLIN_QUESTION, "--llm", "openai", "--model", SERVED_MODEL)
    assert result.exit_code == 0, result.output
    assert chat.requests == ["/v1/chat/completions"]
    assert server.requests > embedded  # the question, embedded by the embeddings server


def test_the_embeddings_key_goes_to_the_embeddings_server_and_the_openai_key_does_not(
    run, server, monkeypatch
):
    embed_with(monkeypatch, server.url, QA_EMBEDDING_API_KEY=EMBEDDING_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    ingest_json(run, SEEDS)
    assert set(server.keys) == {EMBEDDING_KEY}


def test_an_embeddings_server_of_its_own_never_gets_the_openai_key(run, server, monkeypatch):
    embed_with(monkeypatch, server.url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    ingest_json(run, SEEDS)
    assert OPENAI_KEY not in server.keys


def test_without_embedding_settings_the_chat_server_and_key_embed_as_before(
    run, server, monkeypatch
):
    monkeypatch.setenv("QA_EMBEDDINGS", "openai")
    monkeypatch.setenv("QA_EMBEDDING_MODEL", MODEL)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    ingest_json(run, SEEDS)
    assert set(server.keys) == {OPENAI_KEY}


def test_with_only_an_openai_key_embeddings_come_from_the_openai_api(monkeypatch):
    monkeypatch.setenv("QA_EMBEDDINGS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    embedder = get_embedder(get_settings())
    client = embedder.openai_client()
    assert (embedder.name, str(client.base_url)) == (
        "text-embedding-3-small",
        "https://api.openai.com/v1/",
    )
    assert client.api_key == OPENAI_KEY


def test_no_key_and_no_server_is_one_line_saying_what_to_set(run, monkeypatch):
    monkeypatch.setenv("QA_EMBEDDINGS", "openai")
    assert_one_line_error(
        run("ingest", SEEDS), "No API key for OpenAI embeddings", "OPENAI_API_KEY"
    )


def test_a_server_error_is_retried_and_the_ingest_completes(run, monkeypatch):
    with serve_embeddings(EmbeddingServer(faults=[500, 503])) as server:
        embed_with(monkeypatch, server.url)
        report = ingest_json(run, SEEDS)
    assert report["chunks_embedded"] == 7
    assert server.requests == 3


@pytest.mark.parametrize(
    ("faults", "phrases", "requests"),
    [
        ([401], ["the API key was rejected by", "QA_EMBEDDING_API_KEY"], 1),
        ([422], ["answered HTTP 422: HTTP 422 for the request made with key ***"], 1),
        ([503] * 3, ["answered HTTP 503"], 3),
        (["garbage"], ["was not a valid embeddings reply (its body is not JSON)"], 1),
        (["one-short"], ["was not a valid embeddings reply (6 vectors for 7 texts)"], 1),
    ],
)
def test_a_failing_server_is_one_line_with_the_key_masked(
    run, monkeypatch, faults, phrases, requests
):
    with serve_embeddings(EmbeddingServer(faults=faults)) as server:
        embed_with(monkeypatch, server.url, QA_EMBEDDING_API_KEY=EMBEDDING_KEY)
        result = run("ingest", SEEDS)
    assert_one_line_error(result, "Embeddings:", *phrases)
    assert EMBEDDING_KEY not in result.output
    assert server.requests == requests


def test_credentials_in_the_server_url_are_masked(run, monkeypatch):
    with serve_embeddings(EmbeddingServer(faults=["garbage"])) as server:
        url = server.url.replace("http://", "http://reader:hunter2-password@")
        embed_with(monkeypatch, url)
        result = run("ingest", SEEDS)
    assert_one_line_error(result, "the reply from http://***@127.0.0.1:")
    assert "hunter2" not in result.output


def test_a_server_that_does_not_answer_in_time_is_one_line(run, monkeypatch):
    with serve_embeddings(EmbeddingServer(delay=5)) as server:
        embed_with(monkeypatch, server.url, QA_TIMEOUT="0.5", QA_MAX_RETRIES="0")
        result = run("ingest", SEEDS)
    assert_one_line_error(result, "Embeddings: no complete reply from", "within 0.5s")
