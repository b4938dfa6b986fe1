"""A writer killed at any moment leaves a store that answers only from whole, current articles."""

import json
import os
import shutil
import subprocess
import sys
import time

from qa.settings import get_settings
from qa.store import Store
from tests.conftest import SEED_ARTICLE

# Runs `qa ingest ARGS...` and sends itself SIGKILL just before its Nth call into Chroma, so
# every boundary between two store operations (chunk writes, deletes, record writes, the
# writes of the group after) gets a kill in one of the runs.
KILLED_INGEST = """
import os, signal, sys
from qa import cli
from qa.chroma_gateway import ChromaGateway

kill_at, calls, entered = int(sys.argv[1]), 0, ChromaGateway.calls

def dying_calls(self):
    global calls
    calls += 1
    if calls == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return entered(self)

ChromaGateway.calls = dying_calls
sys.argv = ["qa", "ingest", *sys.argv[2:]]
cli.main()
"""

STORIES = [
    {"id": "bridge", "title": "Riverton bridge", "date": "2024-03-01",
     "text": "The Riverton bridge will close for repairs on Monday.\n\n"
             "Engineers found cracks in two of its steel beams during an inspection."},
    {"id": "harbour", "title": "Harbour dredging", "date": "2024-03-02",
     "text": "Dredging of the harbour begins next week and will take four months."},
]  # fmt: skip


def write_corpus(folder, seed_text, stories):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SEED_ARTICLE.name).write_text(seed_text)
    (folder / "stories.jsonl").write_text("".join(json.dumps(s) + "\n" for s in stories))
    return folder


def store_state(home):
    """Chunk ids, and every chunk checked against the article text its record holds."""
    store = Store.open(get_settings(home=home))
    versions = {record.id: record.hash for record in store.articles()}
    texts = {}
    hits = store.chunks(store.chunk_ids())
    for hit in hits:
        article_id = hit.meta.article_id
        assert versions.get(article_id) == hit.meta.article_hash, hit.chunk_id
        if article_id not in texts:
            texts[article_id] = store.article(article_id).text
        start, end = hit.meta.start, hit.meta.end
        assert texts[article_id][start:end] == hit.text, hit.chunk_id
    return sorted(hit.chunk_id for hit in hits)


def every_recorded_article_is_whole(home):
    """Each record's version has all its chunks in the store: every listed article answers."""
    store = Store.open(get_settings(home=home))
    held = {}
    for hit in store.chunks(store.chunk_ids()):
        key = (hit.meta.article_id, hit.meta.article_hash)
        held[key] = held.get(key, 0) + 1
    for record in store.articles():
        assert held.get((record.id, record.hash), 0) == record.chunks, record.id


def quotes_match_their_articles(run, home, question):
    """Every passage `qa ask` offers equals its article's recorded text at its offsets."""
    result = run("ask", question, "--json", "--k", "10", "--home", home)
    assert result.exit_code == 0, result.output
    store = Store.open(get_settings(home=home))
    for passage in json.loads(result.stdout)["passages"]:
        article = store.article(passage["article_id"])
        assert article.text[passage["start"] : passage["end"]] == passage["text"]


def test_an_ingest_killed_before_any_store_call_leaves_a_consistent_store(run, tmp_path):
    """Killed at each store call in turn, then run again with the same articles, or with the
    earlier ones (so nothing rewrites what the killed run touched): either way the store
    equals a clean ingest's, chunk for chunk. (Ingest only adds: the new article stays, whole,
    if the killed run recorded it.)"""
    seed = SEED_ARTICLE.read_text()
    old = write_corpus(tmp_path / "old", seed, STORIES)
    changed = [
        {**STORIES[0], "text": STORIES[0]["text"].replace("Monday", "Friday")},
        STORIES[1],
        {"id": "ferry", "title": "Ferry timetable", "date": "2024-03-03",
         "text": "A new ferry timetable starts in April with six crossings a day."},
    ]  # fmt: skip
    new = write_corpus(tmp_path / "new", seed + "\n\nA closing paragraph was added.", changed)

    base = tmp_path / "base"
    assert run("ingest", old, "--home", base).exit_code == 0
    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    assert run("ingest", new, "--home", clean).exit_code == 0
    expected = store_state(clean)
    expected_old = store_state(base)

    kill_at, finished = 1, False
    while not finished:
        home = tmp_path / f"killed-{kill_at}"
        shutil.copytree(base, home)
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_INGEST, str(kill_at), str(new)],
            env={**os.environ, "QA_HOME": str(home)},
            capture_output=True,
            text=True,
        )
        finished = killed.returncode == 0
        assert finished or killed.returncode == -9, killed.stderr
        # Before any repair, readers offer only chunks of the recorded versions, and every
        # recorded article, edited or not, still has all of them.
        every_recorded_article_is_whole(home)
        quotes_match_their_articles(run, home, "When will the Riverton bridge close?")
        back = tmp_path / f"back-{kill_at}"
        shutil.copytree(home, back)
        for rerun_home, corpus, state in ((home, new, expected), (back, old, expected_old)):
            rerun = run("ingest", corpus, "--home", rerun_home)
            assert rerun.exit_code == 0, rerun.output
            kept = [c for c in store_state(rerun_home) if corpus == new or "ferry:" not in c]
            assert kept == state, f"killed at store call {kill_at}"
            shutil.rmtree(rerun_home)
        kill_at += 1
    assert kill_at > 5, "the ingest made too few store calls to test anything"


def test_two_ingests_at_once_never_interleave_and_every_chunk_keeps_its_vector(run, tmp_path):
    stories = [
        {"id": f"s{n}", "title": f"Story {n}", "text": f"Council meeting {n}. " * 60}
        for n in range(150)
    ]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps(s) + "\n" for s in stories[:100]))
    second.write_text("".join(json.dumps(s) + "\n" for s in stories[100:]))
    home = tmp_path / "home"
    assert run("ingest", SEED_ARTICLE, "--home", home).exit_code == 0
    # A writer's journal entry is there from its first batch until it is done.
    store = Store.open(get_settings(home=home))
    writer = subprocess.Popen(
        [sys.executable, "-m", "qa", "ingest", str(first)],
        env={**os.environ, "QA_HOME": str(home)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while writer.poll() is None and not store.journal_entries():
            time.sleep(0.05)
        assert writer.poll() is None, "the first ingest ended before the second could start"
        busy = run("ingest", second, "--home", home)
        assert busy.exit_code == 1
        assert "Another qa process is writing to the store" in busy.stderr
    finally:
        assert writer.wait(timeout=600) == 0, writer.stderr.read()
    assert run("ingest", second, "--home", home).exit_code == 0
    store = Store.open(get_settings(home=home))
    hits = store.chunks(store.chunk_ids())
    assert {hit.meta.article_id for hit in hits} >= {s["id"] for s in stories}
    assert all(len(hit.vector) == 384 for hit in hits)
    assert sum(record.chunks for record in store.articles()) == len(hits)
