"""Subscriptions: the OPML file a feed reader exports, or a plain list of feed URLs."""

import json

import pytest

from tests.newsroom import Newsroom

THREE_FEEDS = {"world": "etag", "business": "last-modified", "sport": "none"}


pytestmark = pytest.mark.usefixtures("no_host_delay")


@pytest.fixture
def room(site):
    return Newsroom.open(site, THREE_FEEDS, per_feed=2)


def stored_urls(run) -> set[str]:
    listed = run("sources", "--json")
    assert listed.exit_code == 0, listed.output
    return {record["url"] for record in json.loads(listed.stdout)}


def test_ingesting_an_opml_file_brings_in_the_stories_of_its_three_feeds(run, room, tmp_path):
    opml = tmp_path / "subscriptions.opml"
    opml.write_text(room.opml(), encoding="utf-8")

    result = run("ingest", opml, "--json")

    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["added"]) == 6
    assert stored_urls(run) == room.page_urls()
    assert sorted(p for p in room.site.requests if p.endswith("feed.xml")) == sorted(
        f"/{feed}/feed.xml" for feed in THREE_FEEDS
    )


def test_a_watch_takes_an_opml_file_too(run, room, tmp_path):
    opml = tmp_path / "feeds.OPML"
    opml.write_text(room.opml(), encoding="utf-8")

    result = run("watch", opml, "--once", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 6


def test_a_plain_list_of_feed_urls_with_comments_is_read_with_feeds(run, room, tmp_path):
    listed = tmp_path / "feeds.txt"
    world, business, sport = room.feed_urls()
    listed.write_text(f"# my news\n{world}\n\n  {business}  \n# {sport} is too noisy\n")

    result = run("ingest", "--feeds", listed, "--json")

    assert result.exit_code == 0, result.output
    assert "/sport/feed.xml" not in room.site.requests
    assert stored_urls(run) == {url for url in room.page_urls() if "/sport/" not in url}


def test_a_feed_named_twice_is_fetched_once(run, room, tmp_path):
    listed = tmp_path / "feeds.txt"
    listed.write_text(room.feed_url("world") + "\n")

    result = run("ingest", room.feed_url("world"), "--feeds", listed)

    assert result.exit_code == 0, result.output
    assert room.site.requests.count("/world/feed.xml") == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.opml", "<opml><body><outline xmlUrl='x'>", "is not a valid OPML file"),
        ("empty.opml", "<opml><body><outline text='News'/></body></opml>", "No feeds in"),
        ("feed.opml", "<rss version='2.0'><channel/></rss>", "is not an OPML file"),
        ("bomb.opml", '<!DOCTYPE o [<!ENTITY a "aaaaaaaaaa">' + "".join(
            f'<!ENTITY a{n} "{"&a;" * 10 if n == 0 else f"&a{n - 1};" * 10}">' for n in range(9)
        ) + "]><opml><body>&a8;</body></opml>", "is not a valid OPML file"),
    ],
)  # fmt: skip
def test_an_opml_file_qa_cannot_use_is_one_line_and_exit_2(run, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)

    result = run("ingest", path)

    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_line_of_a_feed_list_that_is_no_url_is_named_with_its_number(run, tmp_path):
    listed = tmp_path / "feeds.txt"
    listed.write_text("https://example.com/rss.xml\n# fine\nexample.org/feed\n")

    result = run("ingest", "--feeds", listed)

    assert result.exit_code == 2, result.output
    assert f"{listed}:3 is not a URL: 'example.org/feed'" in result.stderr


def test_a_missing_feed_list_is_one_line_and_exit_2(run, tmp_path):
    result = run("ingest", "--feeds", tmp_path / "nowhere.txt")

    assert result.exit_code == 2, result.output
    assert "Cannot read the feed list" in result.stderr and "no such file" in result.stderr


def test_ingest_with_nothing_to_ingest_says_so(run):
    result = run("ingest")

    assert result.exit_code == 2, result.output
    assert "Nothing to ingest" in result.stderr
