import json
import shutil
import subprocess
import sys

import pytest

from qa.chunking import ChunkSettings
from qa.embeddings import LocalEmbedder, get_embedder
from qa.ingestion import ingest
from qa.loading import load_articles
from qa.settings import get_settings
from qa.store import Store
from tests.conftest import SEED_ARTICLE, SEEDS


def ingest_json(run, *paths):
    result = run("ingest", *paths, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_reports_added_then_unchanged_and_embeds_nothing_the_second_time(run):
    first = ingest_json(run, SEEDS)
    assert first["added"] == ["000_0ae6590b4ea8367e"]
    assert first["chunks_embedded"] > 0
    second = ingest_json(run, SEEDS)
    assert second["added"] == [] and second["updated"] == []
    assert second["unchanged"] == ["000_0ae6590b4ea8367e"]
    assert second["chunks_embedded"] == 0


def test_changed_article_replaces_all_its_old_chunks(run, tmp_path):
    copy = tmp_path / "corpus" / SEED_ARTICLE.name
    copy.parent.mkdir()
    shutil.copy(SEED_ARTICLE, copy)
    ingest_json(run, copy.parent)
    copy.write_text("date 2017-08-07\nA short replacement story about a parade in Manila.")
    report = ingest_json(run, copy.parent)
    assert report["updated"] == [copy.stem]
    store = Store.open(get_settings())
    chunks = store.chunks(store.chunk_ids())
    assert [chunk.text for chunk in chunks] == [
        "A short replacement story about a parade in Manila."
    ]
    (record,) = store.articles()
    assert (record.date, record.chunks) == ("2017-08-07", 1)


def test_skipped_files_are_listed_with_reasons(run, tmp_path):
    shutil.copy(SEED_ARTICLE, tmp_path)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\x00\x00")
    report = ingest_json(run, tmp_path)
    reasons = {item["location"].rsplit("/", 1)[-1]: item["reason"] for item in report["skipped"]}
    assert reasons == {"empty.txt": "empty file", "image.txt": "binary file (contains NUL bytes)"}
    assert len(report["added"]) == 1


def test_missing_path_fails_with_exit_code_2_and_no_traceback(run, tmp_path):
    result = run("ingest", tmp_path / "missing")
    assert result.exit_code == 2
    assert "No such file or directory" in result.stderr
    assert "Traceback" not in result.output


def test_directory_without_readable_articles_fails_and_says_why(run, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    result = run("ingest", tmp_path)
    assert result.exit_code == 2
    assert "No readable articles" in result.stderr
    assert "empty.txt: empty file" in result.stderr


def test_other_embedding_model_is_refused_naming_both(run, monkeypatch):
    ingest_json(run, SEEDS)
    monkeypatch.setenv("QA_EMBEDDINGS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for command in (["ingest", SEEDS], ["ask", "Who met Lavrov?"]):
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert "'all-MiniLM-L6-v2'" in result.stderr
        assert "'text-embedding-3-small'" in result.stderr


def test_other_chunk_settings_are_refused(run, monkeypatch):
    ingest_json(run, SEEDS)
    monkeypatch.setenv("QA_CHUNK_SIZE", "300")
    result = run("ingest", SEEDS)
    assert result.exit_code == 1
    assert "was built with chunk_size=900; this ingest asks for chunk_size=300" in result.stderr


class FailingEmbedder(LocalEmbedder):
    def embed_documents(self, texts, progress=None):
        raise RuntimeError("embedding failed midway")


def test_failed_ingest_leaves_the_stored_article_as_it_was(run, tmp_path):
    copy = tmp_path / SEED_ARTICLE.name
    shutil.copy(SEED_ARTICLE, copy)
    ingest_json(run, copy)
    store = Store.open(get_settings())
    before = sorted(store.chunk_ids())
    copy.write_text(copy.read_text() + "\nA new closing paragraph.")
    with pytest.raises(RuntimeError):
        embedder = FailingEmbedder("all-MiniLM-L6-v2")
        ingest([copy], store, embedder, ChunkSettings(size=900, overlap=150))
    assert sorted(store.chunk_ids()) == before
    assert store.article_hashes() != {copy.stem: load_articles([copy]).articles[0].hash}


def test_sources_lists_articles_and_reset_empties_the_collection(run):
    ingest_json(run, SEEDS)
    listed = json.loads(run("sources", "--json").stdout)
    assert [(a["id"], a["date"]) for a in listed] == [("000_0ae6590b4ea8367e", "2017-08-06")]
    assert listed[0]["chunks"] > 1
    declined = run("reset", input="n\n")
    assert declined.exit_code == 1
    assert len(json.loads(run("sources", "--json").stdout)) == 1
    assert run("reset", "--yes").exit_code == 0
    assert json.loads(run("sources", "--json").stdout) == []


def test_overlap_not_below_chunk_size_is_refused_before_anything_is_read(run, monkeypatch):
    monkeypatch.setenv("QA_CHUNK_SIZE", "300")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "300")
    result = run("ingest", SEEDS)
    assert result.exit_code == 2
    assert "chunk_overlap (300) must be smaller than chunk_size (300)" in result.stderr


def test_a_second_writer_stops_with_one_line_while_the_first_holds_the_store(run, tmp_path):
    ingest_json(run, SEEDS)
    lock = Store.open(get_settings()).lock_path
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from filelock import FileLock; "
         "l = FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); sys.stdin.read()",
         str(lock)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        copy = tmp_path / "new.txt"
        copy.write_text("A story about a new bridge in Riverton.")
        result = run("ingest", copy)
        assert result.exit_code == 1
        assert "Another qa process is writing to the store" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        # Readers keep working while a writer holds the store.
        assert run("ask", "Who is Kurt Volker?").exit_code == 0
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert ingest_json(run, copy)["added"] == ["new"]


def test_one_huge_article_shows_progress_while_it_is_embedded(run, tmp_path):
    store = Store.open(get_settings())
    article = tmp_path / "long.txt"
    article.write_text("\n\n".join(f"Paragraph {n} of a very long report." * 8 for n in range(600)))
    seen = []
    report = ingest(
        [article],
        store,
        get_embedder(get_settings()),
        ChunkSettings(size=900, overlap=150),
        progress=lambda done, total: seen.append((done, total)),
    )
    total = report.chunks_embedded
    assert total > 100
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    # Progress moves many times within the one article, not once at its end.
    assert len({done for done, _ in seen}) > total // 64


def test_an_article_over_the_size_limit_is_refused_before_any_embedding(run, monkeypatch):
    monkeypatch.setenv("QA_MAX_ARTICLE_MB", "0.001")
    result = run("ingest", SEEDS)
    assert result.exit_code == 2
    assert "over the 0.001 MB limit for one article (QA_MAX_ARTICLE_MB)" in result.stderr
    assert "Embedding" not in result.stderr


def test_ignored_fields_are_noted_in_the_summary_and_the_json(run, tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"id": "a", "date": "31/02/2020", "text": "A story."}) + "\n")
    shown = run("ingest", path)
    assert shown.exit_code == 0, shown.output
    assert "note" in shown.stderr and "invalid date '31/02/2020' ignored" in shown.stderr
    path.write_text(json.dumps({"id": "a", "date": "2020-02-31", "text": "A story."}) + "\n")
    report = ingest_json(run, path)
    assert report["notes"] == [
        {
            "location": f"{path}:1",
            "message": "invalid date '2020-02-31' ignored (expected YYYY-MM-DD)",
        }
    ]


def test_listing_an_unknown_collection_creates_nothing(run):
    ingest_json(run, SEEDS)
    listed = run("sources", "--collection", "other", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    client = Store.open(get_settings()).client
    assert sorted(c.name for c in client.list_collections()) == [
        "default",
        "default__articles",
        "default__journal",
    ]


def test_an_error_is_one_line_even_on_a_narrow_terminal(run, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "40")
    missing = tmp_path / ("a-rather-long-folder-name-" * 4) / "news.txt"
    result = run("ingest", missing)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(missing) in result.stderr
