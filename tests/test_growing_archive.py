"""Asking, and ingesting one article, cost the same however much the store already holds."""

import json

import pytest

from qa.chunk_collection import ChunkCollection
from qa.store import Store
from tests.conftest import KREMLIN_QUESTION, SEEDS

STORIES = [
    {"id": f"s{n}", "title": f"Council {n}", "text": f"The council met {n} times in Riverton."}
    for n in range(30)
]


@pytest.fixture
def archive(run, tmp_path):
    corpus = tmp_path / "stories.jsonl"
    corpus.write_text("".join(json.dumps(story) + "\n" for story in STORIES))
    for source in (SEEDS, corpus):
        assert run("ingest", source).exit_code == 0
    return run


@pytest.fixture
def no_whole_reads(monkeypatch):
    """Any read of every chunk or every record fails the test."""

    def whole_read(*args, **kwargs):
        raise AssertionError("read the whole collection")

    monkeypatch.setattr(ChunkCollection, "_pages", whole_read)
    for name in ("articles", "article_hashes", "chunk_ids"):
        monkeypatch.setattr(Store, name, whole_read)


def test_a_question_reads_neither_every_chunk_nor_every_record(archive, no_whole_reads):
    for retrieval in ("hybrid", "keyword", "dense"):
        result = archive("ask", KREMLIN_QUESTION, "--retrieval", retrieval, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["short_answer"] == "755 people"


def test_ingesting_one_article_reads_neither_every_chunk_nor_every_record(
    archive, no_whole_reads, tmp_path
):
    article = tmp_path / "ferry.txt"
    article.write_text("date 2024-05-01\nThe harbour ferry Zephyrine now sails at noon.\n")
    result = archive("ingest", article, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == ["ferry"]
    answer = json.loads(archive("ask", "Zephyrine", "--retrieval", "keyword", "--json").stdout)
    assert [passage["article_id"] for passage in answer["passages"]] == ["ferry"]
