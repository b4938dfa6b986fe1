"""`qa watch`: rounds that ask feeds only for what changed, back off from failing feeds, and
stop cleanly mid-round; against a loopback newsroom and a real embedded store."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from filelock import FileLock

from qa.bundled_model import bundled_model_path
from qa.onnx_embedder import cached_graph
from qa.settings import get_settings
from qa.store import Store
from qa.watch import next_start, parse_interval, watch
from qa.workspace import Workspace
from tests.newsroom import Newsroom
from tests.servers import free_port

THREE_FEEDS = {"world": "etag", "business": "last-modified", "sport": "both"}
MODEL = "all-MiniLM-L6-v2"


pytestmark = pytest.mark.usefixtures("no_host_delay")


def one_round(run, *args: str) -> dict:
    result = run("watch", *args, "--once", "--json")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.strip().splitlines()
    return json.loads(line)


def hashes(run) -> dict[str, str]:
    """Each stored article's URL and content hash, as `qa sources` lists them."""
    listed = run("sources", "--json")
    assert listed.exit_code == 0, listed.output
    store = Store.open(get_settings())
    records = store.records_of([record["id"] for record in json.loads(listed.stdout)])
    return {record.url: record.hash for record in records.values()}


def test_after_the_first_round_only_new_and_edited_stories_are_fetched_and_embedded(run, site):
    room = Newsroom.open(site, THREE_FEEDS, per_feed=50)

    first = one_round(run, *room.feed_urls())
    assert (first["added"], first["failed"], first["feed_requests"]) == (150, 0, 3)
    assert first["page_requests"] == 150
    assert set(hashes(run)) == room.page_urls()

    for number in range(3):
        before = hashes(run)
        added = [room.add("world"), room.add(("business", "sport")[number % 2])]
        edited = room.stories[number * 7]
        room.edit(edited)
        room.publish()
        mark = len(site.hits)

        result = one_round(run, *room.feed_urls())

        hits = site.hits[mark:]
        feeds = [hit for hit in hits if hit.path.endswith("/feed.xml")]
        pages = [hit.path for hit in hits if "/story-" in hit.path]
        assert len(feeds) <= 3
        assert sorted(pages) == sorted(story.path for story in [*added, edited])
        assert (result["added"], result["updated"], result["failed"]) == (2, 1, 0)
        after = hashes(run)
        changed = {url for url, version in after.items() if before.get(url) != version}
        assert changed == {site.url(story.path) for story in [*added, edited]}
        assert result["unchanged"] == len(after) - 3

    mark = len(site.hits)
    quiet = one_round(run, *room.feed_urls())

    hits = site.hits[mark:]
    assert [hit.path for hit in hits] == [f"/{feed}/feed.xml" for feed in THREE_FEEDS]
    assert all(hit.status == 304 for hit in hits)
    assert all("If-None-Match" in h.headers or "If-Modified-Since" in h.headers for h in hits)
    assert (quiet["added"], quiet["updated"], quiet["chunks_embedded"]) == (0, 0, 0)
    assert quiet["not_modified"] == 3 and quiet["unchanged"] == 156

    # The store holds exactly the site's stories, each as it now reads.
    assert set(hashes(run)) == room.page_urls()
    store = Store.open(get_settings())
    text = store.article(site.url(room.stories[7].path).removeprefix("http://")).text
    assert "corrected in edition 2" in text


class FakeClock:
    """Time that passes only when the watch sleeps."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_busy_feed_is_asked_again_when_retry_after_says_and_the_others_keep_their_rounds(
    site, monkeypatch
):
    room = Newsroom.open(site, {"world": "etag", "business": "both", "sport": "none"}, 2)
    room.fail("business", 503, retry_after="120")
    room.fail("sport", 429, retry_after=None)
    unreachable = f"http://127.0.0.1:{free_port()}/feed.xml"
    clock = FakeClock()
    asked: dict[int, list[str]] = {}
    results = []

    def after_round(result) -> None:
        results.append(result)
        asked[result.number] = [hit.path for hit in site.hits if hit.path.endswith("feed.xml")]
        site.hits.clear()
        if result.number == 2:
            room.recover("business")

    watch(
        Workspace(get_settings()),
        [*room.feed_urls(), unreachable],
        [],
        60.0,
        after_round,
        rounds=5,
        clock=clock.time,
        sleep=clock.sleep,
    )

    assert [result.started - results[0].started for result in results] == [0, 60, 120, 180, 240]
    assert all(result.error is None for result in results)
    world, business, sport = "/world/feed.xml", "/business/feed.xml", "/sport/feed.xml"
    # Retry-After: 120 skips the round at 60 s; 429 without it waits 60 s, then 120, then 240.
    assert asked == {
        1: [world, business, sport],
        2: [world, sport],
        3: [world, business],
        4: [world, business, sport],
        5: [world, business],
    }
    assert [len(result.failures) for result in results] == [3, 2, 0, 2, 0]
    assert [result.waiting for result in results] == [0, 1, 2, 0, 2]
    assert results[2].added == 2  # the business stories, once the feed answered
    assert {s.location for s in results[3].failures} == {room.feed_url("sport"), unreachable}


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One exported ONNX graph for this process and the watches it starts."""
    folder = tmp_path_factory.mktemp("models")
    cached_graph(MODEL, bundled_model_path(MODEL), folder)
    return folder


# `qa watch`, writing a few articles at a time (so a round is written piecemeal), noting in a
# log file when each batch's write starts and when it is done.
LOGGED_WATCH = """
import sys
from qa import cli, ingestion, writer
ingestion.EMBED_GROUP_CHUNKS = 12
ingestion.LOOKUP_GROUP_ARTICLES = 4
log, write = open(sys.argv[1], "a", buffering=1), writer.Writer.write

def logged_write(self, batch, *args, **kwargs):
    log.write("start\\n")
    write(self, batch, *args, **kwargs)
    log.write("done\\n")

writer.Writer.write = logged_write
sys.argv = ["qa", "watch", *sys.argv[2:]]
cli.main()
"""


def every_recorded_article_is_whole() -> int:
    """Each record's version has all its chunks in the store; returns how many records."""
    store = Store.open(get_settings())
    held: dict[tuple[str, str], int] = {}
    for hit in store.chunks(store.chunk_ids()):
        key = (hit.meta.article_id, hit.meta.article_hash)
        held[key] = held.get(key, 0) + 1
    records = store.articles()
    for record in records:
        assert held.get((record.id, record.hash), 0) == record.chunks, record.id
    return len(records)


def test_sigterm_mid_round_exits_0_with_a_whole_store_and_the_next_round_writes_the_rest(
    run, site, model_cache, monkeypatch, tmp_path
):
    monkeypatch.setenv("QA_MODEL_CACHE", str(model_cache))
    room = Newsroom.open(site, THREE_FEEDS, per_feed=20, paragraphs=3)
    log = tmp_path / "writes.log"
    log.touch()
    env = {**os.environ, "QA_MODEL_CACHE": str(model_cache)}
    command = [sys.executable, "-c", LOGGED_WATCH, str(log), *room.feed_urls(), "--every", "1h"]
    watcher = subprocess.Popen(
        [*command, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while log.read_text().count("done") < 2:
        assert watcher.poll() is None, watcher.communicate()
        assert time.monotonic() < deadline, "no batch was written"
        time.sleep(0.02)

    watcher.send_signal(signal.SIGTERM)
    stdout, stderr = watcher.communicate(timeout=60)

    assert watcher.returncode == 0, stderr
    assert "Traceback" not in stderr and "Stopped" in stderr
    assert stdout == ""  # the round was cut short: no round line
    writes = log.read_text()
    assert writes.count("start") == writes.count("done")  # the write under way was finished
    written = every_recorded_article_is_whole()
    assert 0 < written < 60
    mark = len(site.requests)

    rest = one_round(run, *room.feed_urls())

    pages = [path for path in site.requests[mark:] if "/story-" in path]
    assert (rest["added"], rest["unchanged"], rest["updated"]) == (60 - written, written, 0)
    assert len(pages) == 60 - written == len(set(pages))
    assert rest["not_modified"] == 3  # the feeds were remembered when the watch stopped
    assert every_recorded_article_is_whole() == 60
    assert {record["url"] for record in json.loads(run("sources", "--json").stdout)} == (
        room.page_urls()
    )


def test_sigterm_between_rounds_ends_the_watch_at_once_with_exit_0(site, model_cache, tmp_path):
    room = Newsroom.open(site, {"world": "etag"}, 2)
    env = {**os.environ, "QA_MODEL_CACHE": str(model_cache)}
    command = [sys.executable, "-m", "qa", "watch", room.feed_url("world"), "--every", "1h"]
    watcher = subprocess.Popen(
        [*command, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first = json.loads(watcher.stdout.readline())
    assert first["added"] == 2

    watcher.send_signal(signal.SIGTERM)
    stdout, stderr = watcher.communicate(timeout=20)

    assert watcher.returncode == 0, stderr
    assert stdout == "" and "Traceback" not in stderr


def test_a_round_that_finds_the_store_busy_is_reported_and_the_watch_goes_on(site):
    room = Newsroom.open(site, {"world": "etag"}, 2)
    settings = get_settings()
    lock = FileLock(settings.store.data_dir / "chroma.write.lock")
    settings.store.data_dir.mkdir(parents=True, exist_ok=True)
    lock.acquire()
    results = []

    def after_round(result) -> None:
        results.append(result)
        lock.release()

    clock = FakeClock()
    watch(Workspace(settings), room.feed_urls(), [], 60.0, after_round, 2, clock.time, clock.sleep)

    busy, then = results
    assert "Another qa process is writing" in busy.error and not busy.ok
    assert "not run: Another qa process is writing" in busy.line()
    assert (then.error, then.added) == (None, 2)


def test_each_round_is_one_line_with_its_counts(run, site):
    room = Newsroom.open(site, {"world": "etag"}, 3)

    result = run("watch", room.feed_url("world"), "--once")

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert " round 1: 3 added, 0 updated, 0 unchanged, 0 failed; 5 requests, 0 not modified" in (
        line
    )


def test_a_round_where_every_source_fails_is_exit_1_under_once(run, site):
    result = run("watch", site.url("/gone.xml"), "--once")

    assert result.exit_code == 1, result.output
    assert "0 added, 0 updated, 0 unchanged, 1 failed" in result.stderr
    assert f"skipped {site.url('/gone.xml')}: HTTP 404" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("1d", 86400)]
)
def test_intervals_read_as_people_write_them(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "30s"], "shorter than 1m"),
        (["--every", "soon"], "Invalid interval 'soon'"),
        (["--every", "15"], "Invalid interval '15'"),
        ([], "--every"),
    ],
)
def test_a_bad_schedule_is_one_line_and_exit_2(run, site, args, message):
    result = run("watch", site.url("/feed.xml"), *args)

    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert site.requests == []


def test_a_missing_source_or_a_malformed_url_stops_the_watch_before_its_first_round(run, site):
    missing = run("watch", "nowhere/subscriptions.opml", "--once")
    malformed = run("watch", "http://", "--every", "15m")

    assert missing.exit_code == 2 and "nowhere/subscriptions.opml" in missing.stderr
    assert malformed.exit_code == 2 and "Not a valid URL" in malformed.stderr


def test_the_next_round_starts_an_interval_after_the_last_or_at_once_if_that_is_past():
    assert next_start(1000.0, 60.0, now=1010.0) == 1060.0
    # A round that took longer than the interval is followed at once, never overlapped.
    assert next_start(1000.0, 60.0, now=1100.0) == 1100.0
