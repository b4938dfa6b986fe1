"""What `qa ingest` remembers of feeds and pages: asked for again only conditionally or when
updated, kept per collection beside the store, and never trusted over the store."""

import hashlib
import json
import uuid

import pytest

from qa.settings import get_settings
from tests.news_site import Route, rss
from tests.newsroom import Newsroom

PAGE = """<html><body><article><h1>Harbour dredging begins</h1>
<p>Dredging of the harbour at Port Elspeth begins next week and will take four months, the
harbour authority said on Monday, after a two-year dispute over the contract.</p>
<p>The authority said up to 40 sailings a day would use the deepened channel once the work is
done, and that fares would not rise to pay for it.</p></article></body></html>"""


pytestmark = pytest.mark.usefixtures("no_host_delay")


def ingest_json(run, *args: str) -> dict:
    result = run("ingest", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def paths_since(site, mark: int) -> list[str]:
    return site.requests[mark:]


def test_a_second_ingest_of_a_feed_asks_only_whether_it_changed(run, site):
    room = Newsroom.open(site, {"world": "etag"}, 4)
    assert len(ingest_json(run, room.feed_url("world"))["added"]) == 4
    mark = len(site.hits)

    again = ingest_json(run, room.feed_url("world"))

    (hit,) = site.hits[mark:]
    assert (hit.path, hit.status, hit.headers["If-None-Match"]) == (
        "/world/feed.xml",
        304,
        (site.routes["/world/feed.xml"].etag),
    )
    assert len(again["unchanged"]) == 4 and again["chunks_embedded"] == 0


def test_refetch_fetches_every_page_again_as_ingest_did_before(run, site):
    room = Newsroom.open(site, {"world": "etag"}, 4)
    ingest_json(run, room.feed_url("world"))
    mark = len(site.requests)

    again = ingest_json(run, room.feed_url("world"), "--refetch")

    fetched = paths_since(site, mark)
    assert sorted(p for p in fetched if "/story-" in p) == sorted(s.path for s in room.stories)
    assert all("If-None-Match" not in hit.headers for hit in site.hits[-len(fetched) :])
    assert len(again["unchanged"]) == 4 and again["chunks_embedded"] == 0


def test_a_feed_without_validators_is_read_whole_but_its_unchanged_entries_are_not_fetched(
    run, site
):
    room = Newsroom.open(site, {"culture": "none"}, 4)
    ingest_json(run, room.feed_url("culture"))
    room.add("culture")
    room.publish()
    mark = len(site.hits)

    again = ingest_json(run, room.feed_url("culture"))

    hits = site.hits[mark:]
    assert [(hit.path, hit.status) for hit in hits if hit.path != "/robots.txt"] == [
        ("/culture/feed.xml", 200),
        ("/culture/story-5", 200),
    ]
    assert len(again["added"]) == 1 and len(again["unchanged"]) == 4


def test_an_entry_without_a_date_has_its_page_asked_for_conditionally(run, site):
    etag = '"' + hashlib.sha256(PAGE.encode()).hexdigest()[:16] + '"'
    site.routes["/harbour"] = Route(PAGE.encode(), etag=etag)
    site.routes["/feed.xml"] = Route(rss([{"link": site.url("/harbour")}]), "text/xml")
    ingest_json(run, site.url("/feed.xml"))
    mark = len(site.hits)

    again = ingest_json(run, site.url("/feed.xml"))

    page = next(hit for hit in site.hits[mark:] if hit.path == "/harbour")
    assert (page.status, page.headers["If-None-Match"]) == (304, etag)
    assert len(again["unchanged"]) == 1


def test_a_page_given_directly_is_asked_for_conditionally(run, site):
    site.routes["/harbour"] = Route(PAGE.encode(), last_modified="Mon, 06 May 2024 10:00:00 GMT")
    ingest_json(run, site.url("/harbour"))
    mark = len(site.hits)

    again = ingest_json(run, site.url("/harbour"))

    (hit,) = site.hits[mark:]
    assert (hit.status, hit.headers["If-Modified-Since"]) == (304, "Mon, 06 May 2024 10:00:00 GMT")
    assert again["unchanged"] == [site.url("/harbour").removeprefix("http://")]


def test_an_entry_retitled_in_its_feed_is_read_again(run, site):
    room = Newsroom.open(site, {"world": "etag"}, 2)
    ingest_json(run, room.feed_url("world"))
    story = room.stories[0]
    site.routes["/world/feed.xml"] = Route(
        site.routes["/world/feed.xml"].body.replace(story.title.encode(), b"A new headline"),
        "application/rss+xml",
    )
    mark = len(site.requests)

    ingest_json(run, room.feed_url("world"))

    assert story.path in paths_since(site, mark)


def test_the_state_lives_beside_the_store_one_file_a_collection(run, site):
    room = Newsroom.open(site, {"world": "etag"}, 2)
    ingest_json(run, room.feed_url("world"))
    ingest_json(run, room.feed_url("world"), "--collection", "other")

    folder = get_settings().store.data_dir / "feeds"
    assert sorted(path.name for path in folder.iterdir()) == ["default.json", "other.json"]
    state = json.loads((folder / "default.json").read_text())
    assert list(state["feeds"]) == [room.feed_url("world")]


def test_a_damaged_state_file_costs_only_refetches(run, site):
    room = Newsroom.open(site, {"world": "etag"}, 3)
    ingest_json(run, room.feed_url("world"))
    state = get_settings().store.data_dir / "feeds" / "default.json"
    state.write_text('{"format": 1, "feeds": [')
    mark = len(site.requests)

    again = ingest_json(run, room.feed_url("world"))

    assert sum("/story-" in path for path in paths_since(site, mark)) == 3
    assert len(again["unchanged"]) == 3 and again["skipped"] == []


def test_after_a_reset_what_the_state_remembers_is_fetched_and_stored_again(run, site):
    room = Newsroom.open(site, {"world": "etag"}, 3)
    ingest_json(run, room.feed_url("world"))
    assert run("reset", "--yes").exit_code == 0
    mark = len(site.hits)

    again = ingest_json(run, room.feed_url("world"))

    # The feed has not changed (304), but the store no longer holds its stories.
    assert site.hits[mark].status == 304
    assert len(again["added"]) == 3
    listed = json.loads(run("sources", "--json").stdout)
    assert {record["url"] for record in listed} == room.page_urls()


@pytest.mark.server
def test_through_a_chroma_server_the_state_is_kept_per_server_and_collection(
    run, site, chroma_server, monkeypatch
):
    monkeypatch.setenv("QA_CHROMA_URL", chroma_server)
    collection = f"feeds-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("QA_COLLECTION", collection)
    room = Newsroom.open(site, {"world": "last-modified"}, 2)
    ingest_json(run, room.feed_url("world"))
    mark = len(site.hits)

    again = ingest_json(run, room.feed_url("world"))

    assert [hit.status for hit in site.hits[mark:]] == [304]
    assert len(again["unchanged"]) == 2
    server = hashlib.sha256(chroma_server.encode()).hexdigest()[:12]
    folder = get_settings().store.data_dir / "feeds" / f"server-{server}"
    assert (folder / f"{collection}.json").is_file()
