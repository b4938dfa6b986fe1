"""Several `qa ingest` processes writing to one Chroma server at once: every article whole and
findable afterwards, no writer removing another live writer's work, and a dead writer's
leftovers removed, exactly, once its lease has run out."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from qa.bundled_model import bundled_model_path
from qa.ingestion import EMBED_GROUP_CHUNKS
from qa.keyword_index import tokenize
from qa.onnx_embedder import cached_graph
from qa.settings import get_settings
from qa.store import Store
from qa.writer import LEASE_SECONDS
from tests.conftest import SEED_ARTICLE

pytestmark = pytest.mark.server

MODEL = "all-MiniLM-L6-v2"
# Each paragraph below is longer than half a chunk and fits in one, so it is one chunk: nine to
# an article, and 60 articles make three write batches.
CHUNK_SIZE = 120
PARAGRAPHS = 9
ARTICLES_PER_WRITER = 60
TIMEOUT_SECONDS = 300
QUESTION_WORDS = 30

# `qa ingest ARGS...` embedding about GROUP chunks a batch, that stops just before writing the
# records of its Nth batch (whose chunks are in the store by then, unrecorded), touches MARKER,
# and goes on once GO exists.
PAUSED_INGEST = """
import sys, time
from pathlib import Path
from qa import cli, ingestion
from qa.store import Store

pause_at, marker, go = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
ingestion.EMBED_GROUP_CHUNKS = int(sys.argv[4])
batches, put_records = 0, Store.put_records

def put_records_after_a_pause(self, batch, written_at):
    global batches
    batches += 1
    if batches == pause_at:
        marker.touch()
        while not go.exists():
            time.sleep(0.05)
    return put_records(self, batch, written_at)

Store.put_records = put_records_after_a_pause
sys.argv = ["qa", "ingest", *sys.argv[5:]]
cli.main()
"""

# `qa ingest ARGS...` that, about to create a collection it found missing, touches MARKER and
# waits until GO exists.
CREATE_PAUSED_INGEST = """
import sys, time
from pathlib import Path
from qa import cli
from qa.chroma_http import ChromaServer

marker, go = Path(sys.argv[1]), Path(sys.argv[2])
create = ChromaServer.create_collection

def create_after_a_pause(self, *args, **kwargs):
    marker.touch()
    while not go.exists():
        time.sleep(0.05)
    return create(self, *args, **kwargs)

ChromaServer.create_collection = create_after_a_pause
sys.argv = ["qa", "ingest", *sys.argv[3:]]
cli.main()
"""

# Words for the sentences of made-up local news; a word list reads best as prose.
PLACES = "Riverton Oakfield Marlow Eastbrook Kingsport Ashby Fenwick Holloway".split()  # noqa: SIM905
SUBJECTS = "bridge harbour ferry school library market tram museum clinic depot".split()  # noqa: SIM905
ACTIONS = "approved delayed funded inspected reopened closed reviewed repaired".split()  # noqa: SIM905
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()  # noqa: SIM905
PEOPLE = "residents engineers teachers traders nurses drivers farmers".split()  # noqa: SIM905
LETTERS = "bdfgklmnprstvz"


def code_word(n: int) -> str:
    """A made-up word for article `n`, found in no other article."""
    syllables = []
    for _ in range(3):
        n, digit = divmod(n, len(LETTERS))
        syllables.append(LETTERS[digit] + "a")
    return "zu" + "".join(syllables)


def code_of(article_id: str) -> str:
    return code_word(int(article_id.rsplit("-", 1)[1]))


def sentence(rnd: random.Random) -> str:
    return (
        f"The {rnd.choice(PLACES)} {rnd.choice(SUBJECTS)} was {rnd.choice(ACTIONS)} on "
        f"{rnd.choice(DAYS)} after {rnd.randint(2, 999)} {rnd.choice(PEOPLE)} wrote in."
    )


def paragraph(rnd: random.Random, ending: str = "") -> str:
    while True:
        text = f"{sentence(rnd)}{ending}"
        if CHUNK_SIZE // 2 + 10 <= len(text) <= CHUNK_SIZE - 10:
            return text


def stories(prefix: str, numbers: range, edition: str = "") -> list[dict]:
    """Short articles of PARAGRAPHS paragraphs; article n's first one holds `code_word(n)`."""
    made = []
    for n in numbers:
        rnd = random.Random(f"{n}{edition}")
        paragraphs = [paragraph(rnd, f" The {code_word(n)} plan was named.")]
        paragraphs += [paragraph(rnd) for _ in range(PARAGRAPHS - 1)]
        made.append(
            {
                "id": f"{prefix}-{n:04d}",
                "title": f"{rnd.choice(PLACES)} report {n}",
                "date": f"2024-03-{n % 28 + 1:02d}",
                "text": "\n\n".join(paragraphs),
            }
        )
    return made


def write_jsonl(path: Path, articles: list[dict]) -> Path:
    path.write_text("".join(json.dumps(article) + "\n" for article in articles))
    return path


def ids(articles: list[dict]) -> list[str]:
    return [article["id"] for article in articles]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One exported ONNX graph for every process of these tests, so none exports its own."""
    folder = tmp_path_factory.mktemp("models")
    cached_graph(MODEL, bundled_model_path(MODEL), folder)
    return folder


@pytest.fixture
def server(chroma_server, model_cache, monkeypatch):
    """This process and every ingest it starts use the Chroma server, one chunking, one model
    cache; the collections' names are new in each test."""
    monkeypatch.setenv("QA_CHROMA_URL", chroma_server)
    monkeypatch.setenv("QA_CHUNK_SIZE", str(CHUNK_SIZE))
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "0")
    monkeypatch.setenv("QA_MODEL_CACHE", str(model_cache))
    return chroma_server


def new_collection(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def open_store(home: Path, collection: str) -> Store:
    return Store.open(get_settings(home=home, collection=collection))


class Ingest:
    """`qa ingest CORPUS --json` in a process of its own, with its own QA_HOME."""

    def __init__(
        self, home: Path, collection: str, *sources: Path, script: list[str] | None = None
    ) -> None:
        self.home = home
        self.out = home.parent / f"{home.name}.out"
        self.err = home.parent / f"{home.name}.err"
        command = [sys.executable, *(["-c", *script] if script else ["-m", "qa", "ingest"])]
        env = {**os.environ, "QA_HOME": str(home), "QA_COLLECTION": collection}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [*command, *map(str, sources), "--json"], env=env, stdout=out, stderr=err
            )

    @classmethod
    def paused(
        cls, home: Path, collection: str, corpus: Path, batch: int, group: int = EMBED_GROUP_CHUNKS
    ) -> "Ingest":
        """An ingest of batches of about `group` chunks that waits before recording its
        `batch`th batch, until `release()`."""
        marker, go = home.parent / f"{home.name}.paused", home.parent / f"{home.name}.go"
        script = [PAUSED_INGEST, str(batch), str(marker), str(go), str(group)]
        return cls(home, collection, corpus, script=script)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def is_paused(self) -> bool:
        return (self.home.parent / f"{self.home.name}.paused").exists()

    def release(self) -> None:
        (self.home.parent / f"{self.home.name}.go").touch()

    def report(self) -> dict:
        """Its `--json` report, once it has ended well."""
        code = self.process.wait(timeout=TIMEOUT_SECONDS)
        assert code == 0, self.err.read_text()[-3000:]
        return json.loads(self.out.read_text())

    def journal_entry(self, store: Store) -> tuple[str, dict] | None:
        """Its entry in the journal (the entry id holds the writer's pid), if any."""
        mine = re.compile(rf"-{self.pid}-[0-9a-f]{{12}}$")
        found = [(id_, meta) for id_, meta in store.journal_entries() if mine.search(id_)]
        assert len(found) <= 1
        return found[0] if found else None

    def stop(self) -> None:
        if self.running():
            self.process.kill()
            self.process.wait()


@pytest.fixture
def ingests():
    """Every ingest a test starts is ended when it ends."""
    started: list[Ingest] = []
    yield started
    for ingest in started:
        ingest.stop()


def wait_for(condition, watched: list[Ingest], what: str) -> None:
    """Until `condition()`; fails if a watched ingest ends first."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not condition():
        for ingest in watched:
            assert ingest.running(), f"ended before {what}: {ingest.err.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {TIMEOUT_SECONDS}s"
        time.sleep(0.05)


def chunk_versions(store: Store) -> dict[str, tuple[str, str]]:
    """Every chunk in the store: id -> (article id, content hash)."""
    return {chunk.id: (chunk.article_id, chunk.article_hash) for chunk in store.indexed_chunks()}


def chunks_of(store: Store, article_ids: list[str]) -> set[str]:
    """The ids of every chunk, of any version, of these articles."""
    return {chunk_id for chunk_id, _, _ in store.chunk_versions(article_ids)}


def recorded_chunks(store: Store) -> set[str]:
    """The chunks readers may offer: those of each article's recorded version."""
    versions = store.article_hashes()
    return {
        chunk_id
        for chunk_id, (article_id, content_hash) in chunk_versions(store).items()
        if versions.get(article_id) == content_hash
    }


def every_recorded_article_is_whole(store: Store) -> dict[str, str]:
    """Each record's version has all its chunks in the store; returns id -> recorded hash."""
    records = store.articles()
    held = Counter(chunk_versions(store).values())
    for record in records:
        assert held[(record.id, record.hash)] == record.chunks > 0, record.id
    return {record.id: record.hash for record in records}


def every_chunk_is_current(store: Store) -> set[str]:
    """No chunk of an unrecorded article or of a version not on record; returns the chunk ids."""
    versions = store.article_hashes()
    chunks = chunk_versions(store)
    stale = sorted(
        chunk_id
        for chunk_id, (article_id, content_hash) in chunks.items()
        if versions.get(article_id) != content_hash
    )
    assert not stale, f"{len(stale)} stale chunks, e.g. {stale[:3]}"
    return set(chunks)


def ask(run, home: Path, collection: str, question: str, *options: str) -> list[dict]:
    """The passages `qa ask` offers for `question`."""
    result = run("ask", question, "--json", "--home", home, "--collection", collection, *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["passages"]


def found_by_keyword(run, home: Path, collection: str, article_ids: list[str]) -> set[str]:
    """The articles among these that `qa ask --retrieval keyword` finds by their own words
    (up to QUESTION_WORDS words, each of one article, to a question)."""
    found: set[str] = set()
    for start in range(0, len(article_ids), QUESTION_WORDS):
        group = article_ids[start : start + QUESTION_WORDS]
        question = " ".join(code_of(article_id) for article_id in group)
        k = str(QUESTION_WORDS)
        passages = ask(run, home, collection, question, "--retrieval", "keyword", "--k", k)
        found |= {passage["article_id"] for passage in passages}
    return found


def seeded_collection(run, tmp_path: Path, name: str) -> tuple[str, Path]:
    """A new collection holding the seed article, and a reader's home whose keyword index was
    built from it: later writes reach that index only by catching up from the records."""
    collection = new_collection(name)
    seeded = run("ingest", SEED_ARTICLE, "--home", tmp_path / "setup", "--collection", collection)
    assert seeded.exit_code == 0, seeded.output
    reader = tmp_path / "reader"
    assert ask(run, reader, collection, "Kremlin diplomats", "--retrieval", "keyword")
    return collection, reader


def test_three_writers_at_once_leave_every_article_whole_current_and_findable(
    run, server, ingests, tmp_path
):
    assert PARAGRAPHS * ARTICLES_PER_WRITER > 2 * EMBED_GROUP_CHUNKS, "too few batches"
    corpora = [
        stories(f"w{i}", range(i * ARTICLES_PER_WRITER, (i + 1) * ARTICLES_PER_WRITER))
        for i in range(3)
    ]
    every_article = [article for corpus in corpora for article in corpus]
    assert len({tuple(tokenize(code_of(id_))) for id_ in ids(every_article)}) == 180
    files = [write_jsonl(tmp_path / f"w{i}.jsonl", corpus) for i, corpus in enumerate(corpora)]
    collection, reader = seeded_collection(run, tmp_path, "three")

    # The same articles from one writer, into a collection of their own on the same server.
    single = new_collection("single")
    everything = write_jsonl(tmp_path / "all.jsonl", every_article)
    alone = Ingest(tmp_path / "alone", single, SEED_ARTICLE, everything)
    ingests.append(alone)
    alone.report()

    homes = [tmp_path / f"writer-{i}" for i in range(3)]
    writers = [Ingest(home, collection, file) for home, file in zip(homes, files, strict=True)]
    ingests.extend(writers)
    store = open_store(tmp_path / "setup", collection)
    # The journal shows which writers have a batch under way at each moment.
    most_at_once, batches = 0, defaultdict(set)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while any(writer.running() for writer in writers):
        assert time.monotonic() < deadline, "the writers took too long"
        entries = store.journal_entries()
        most_at_once = max(most_at_once, len(entries))
        for entry_id, meta in entries:
            batches[entry_id].add(meta["versions"])
        time.sleep(0.05)
    reports = [writer.report() for writer in writers]
    for report, corpus in zip(reports, corpora, strict=True):
        assert sorted(report["added"]) == ids(corpus)
        assert report["chunks_embedded"] == PARAGRAPHS * ARTICLES_PER_WRITER
    assert most_at_once >= 2, "the writers never had batches under way at the same time"
    for writer in writers:
        seen = [len(versions) for entry, versions in batches.items() if f"-{writer.pid}-" in entry]
        assert len(seen) == 1 and seen[0] >= 2, f"batches seen: {seen}"
    assert store.journal_entries() == []

    store = open_store(tmp_path / "setup", collection)
    versions = every_recorded_article_is_whole(store)
    assert sorted(versions) == sorted([SEED_ARTICLE.stem, *ids(every_article)])
    held = every_chunk_is_current(store)
    assert held == set(open_store(tmp_path / "alone", single).chunk_ids())
    assert all(len(hit.vector) == 384 for hit in store.chunks(sorted(held)))

    # A home that never ingested, whose index was built before the writers began, and each
    # writer's own home find every article by its own word.
    for home in (reader, *homes):
        assert found_by_keyword(run, home, collection, ids(every_article)) == set(
            ids(every_article)
        ), home.name


def test_a_dead_writers_leftovers_are_never_offered_and_go_only_once_its_lease_ends(
    run, server, ingests, tmp_path
):
    # Batches of about 64 chunks: each of the two writers has three.
    live_articles = stories("live", range(0, 20))
    dead_articles = stories("dead", range(20, 40))
    first_later = stories("later", range(40, 45))
    second_later = stories("later", range(45, 50))
    collection, reader = seeded_collection(run, tmp_path, "killed")
    store = open_store(tmp_path / "setup", collection)

    # Both stop just before recording their second batch: its chunks are in the store by then.
    live_file = write_jsonl(tmp_path / "live.jsonl", live_articles)
    dead_file = write_jsonl(tmp_path / "dead.jsonl", dead_articles)
    live = Ingest.paused(tmp_path / "live", collection, live_file, batch=2, group=64)
    dead = Ingest.paused(tmp_path / "dead", collection, dead_file, batch=2, group=64)
    ingests.extend([live, dead])
    wait_for(lambda: live.is_paused() and dead.is_paused(), [live, dead], "second batches")
    live_id, live_entry = live.journal_entry(store)
    dead_id, dead_entry = dead.journal_entry(store)
    live_in_flight = sorted(json.loads(live_entry["versions"]))
    dead_in_flight = sorted(json.loads(dead_entry["versions"]))
    live_chunks = chunks_of(store, live_in_flight)
    leftovers = chunks_of(store, dead_in_flight)
    assert live_chunks and leftovers
    dead.process.send_signal(signal.SIGKILL)
    assert dead.process.wait(timeout=30) == -signal.SIGKILL

    recorded = every_recorded_article_is_whole(store)
    dead_recorded = [id_ for id_ in ids(dead_articles) if id_ in recorded]
    assert dead_recorded and not set(dead_recorded) & set(dead_in_flight)
    assert set(ids(dead_articles)) - set(dead_recorded) - set(dead_in_flight), "no batch left"
    assert not set(live_in_flight) & set(recorded)
    # Readers offer only recorded chunks: neither the dead writer's nor the paused one's.
    offerable = recorded_chunks(store)
    question = " ".join(
        [code_of(id_) for id_ in dead_in_flight[:5] + live_in_flight[:5]]
        + ["Which bridge was repaired after residents wrote in?"]
    )
    for mode in ("hybrid", "dense", "keyword"):
        passages = ask(run, reader, collection, question, "--retrieval", mode, "--k", "20")
        assert passages, mode
        assert {passage["chunk_id"] for passage in passages} <= offerable, mode
    assert found_by_keyword(run, reader, collection, dead_in_flight + live_in_flight) == set()
    assert found_by_keyword(run, reader, collection, dead_recorded) == set(dead_recorded)

    # A later ingest, while the live writer's batch is under way and the dead one's lease has
    # not run out, removes neither.
    later_home = tmp_path / "later"
    before = set(store.chunk_ids())
    first = Ingest(later_home, collection, write_jsonl(tmp_path / "first.jsonl", first_later))
    ingests.append(first)
    assert sorted(first.report()["added"]) == ids(first_later)
    after = set(store.chunk_ids())
    assert after >= before and after - before == chunks_of(store, ids(first_later))
    assert {id_ for id_, _ in store.journal_entries()} == {live_id, dead_id}

    # Once the dead writer's heartbeat is older than the lease, the next ingest removes its
    # leftovers, and nothing else: the live writer's batch stays.
    store.put_journal_entry(dead_id, {**dead_entry, "heartbeat": time.time() - LEASE_SECONDS - 60})
    before = set(store.chunk_ids())
    second = Ingest(later_home, collection, write_jsonl(tmp_path / "second.jsonl", second_later))
    ingests.append(second)
    assert sorted(second.report()["added"]) == ids(second_later)
    after = set(store.chunk_ids())
    assert before - after == leftovers
    assert after - before == chunks_of(store, ids(second_later))
    assert live_chunks <= after
    assert [id_ for id_, _ in store.journal_entries()] == [live_id]

    live.release()
    assert sorted(live.report()["added"]) == ids(live_articles)
    assert store.journal_entries() == []
    recorded = every_recorded_article_is_whole(store)
    every_chunk_is_current(store)
    dead_unrecorded = [id_ for id_ in ids(dead_articles) if id_ not in recorded]
    assert set(dead_in_flight) <= set(dead_unrecorded)
    assert not chunks_of(store, dead_unrecorded)
    assert sorted(recorded) == sorted(
        [SEED_ARTICLE.stem, *ids(live_articles), *dead_recorded, *ids(first_later + second_later)]
    )
    # The reader catches up with the live writer's last records, though they were stamped
    # before the later ingests' records.
    findable = ids(live_articles) + dead_recorded + ids(first_later + second_later)
    assert found_by_keyword(run, reader, collection, findable) == set(findable)
    assert found_by_keyword(run, reader, collection, dead_unrecorded) == set()


def test_a_writer_never_deletes_another_live_writers_version_of_the_same_article(
    run, server, ingests, tmp_path
):
    collection, reader = seeded_collection(run, tmp_path, "same")
    store = open_store(tmp_path / "setup", collection)
    first_edition = stories("story", range(0, 3))
    second_edition = stories("story", range(0, 3), edition="updated")
    assert [a["text"] for a in first_edition] != [a["text"] for a in second_edition]
    updated = Ingest.paused(
        tmp_path / "updated",
        collection,
        write_jsonl(tmp_path / "new.jsonl", second_edition),
        batch=1,
    )
    ingests.append(updated)
    wait_for(updated.is_paused, [updated], "the updated edition's batch")
    in_flight = chunks_of(store, ids(second_edition))
    assert in_flight

    older = Ingest(
        tmp_path / "older", collection, write_jsonl(tmp_path / "old.jsonl", first_edition)
    )
    ingests.append(older)
    assert sorted(older.report()["added"]) == ids(first_edition)
    assert in_flight <= set(store.chunk_ids()), "the live writer's chunks were deleted"

    updated.release()
    updated.report()
    every_recorded_article_is_whole(store)
    assert found_by_keyword(run, reader, collection, ids(second_edition)) == set(
        ids(second_edition)
    )


def test_two_writers_can_both_start_a_new_collection(run, server, ingests, tmp_path):
    collection = new_collection("fresh")
    first_articles, second_articles = stories("one", range(0, 2)), stories("two", range(2, 4))
    marker, go = tmp_path / "creating", tmp_path / "create"
    first = Ingest(
        tmp_path / "first",
        collection,
        write_jsonl(tmp_path / "one.jsonl", first_articles),
        script=[CREATE_PAUSED_INGEST, str(marker), str(go)],
    )
    ingests.append(first)
    wait_for(marker.exists, [first], "the first writer's creating the collection")
    second = Ingest(
        tmp_path / "second", collection, write_jsonl(tmp_path / "two.jsonl", second_articles)
    )
    ingests.append(second)
    assert sorted(second.report()["added"]) == ids(second_articles)
    go.touch()
    assert sorted(first.report()["added"]) == ids(first_articles)
    store = open_store(tmp_path / "first", collection)
    assert sorted(every_recorded_article_is_whole(store)) == ids(first_articles + second_articles)
