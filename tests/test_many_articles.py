"""A store of more articles than SQLite takes variables in one statement (32,766): Chroma
fails a `get` that would return that many at once, so every read of the records is paged."""

import pytest

from qa.article_records import ARTICLE_VECTOR
from qa.settings import get_settings
from qa.store import Store

ARTICLES = 33_000


@pytest.fixture
def many_records():
    """A collection whose records name ARTICLES articles (records only: no chunk is read)."""
    settings = get_settings()
    store = Store.open(settings)
    store.prepare(settings.embeddings.model_name, settings.chunking)
    records = store.records.create()
    for start in range(0, ARTICLES, 5000):
        ids = [f"story-{n:05d}" for n in range(start, min(ARTICLES, start + 5000))]
        records.upsert(
            ids=ids,
            embeddings=[ARTICLE_VECTOR] * len(ids),
            documents=["Text."] * len(ids),
            metadatas=[{"written_at": 1, "hash": "h", "chunks": 1, "title": f"Story {id_}"}
                       for id_ in ids],
        )  # fmt: skip
    return store


def test_every_record_of_a_large_store_is_read(many_records, run):
    assert len(many_records.articles()) == ARTICLES
    pages = list(many_records.records_written_since(0))
    assert sum(len(page) for page in pages) == ARTICLES
    assert len(many_records.records_of([f"story-{n:05d}" for n in range(ARTICLES)])) == ARTICLES
    listed = run("sources")
    assert listed.exit_code == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == ARTICLES + 1
