"""Polite fetching: robots.txt obeyed for pages reached from feeds, one request at a time per
host with a pause between two, and a site that asks for a pause left alone."""

import itertools
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from qa.politeness import MOST_BACKOFF, Backoff, retry_after_seconds
from tests.news_site import Route, serve_news_site
from tests.newsroom import Newsroom


def ingest(run, *sources: str):
    result = run("ingest", *sources, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_page_robots_txt_disallows_is_a_skipped_line_and_never_fetched(run, site, monkeypatch):
    monkeypatch.setenv("QA_FETCH_HOST_DELAY", "0")
    room = Newsroom.open(site, {"world": "etag"}, 2)
    hidden = room.add("world", folder="private")
    room.publish()

    first = run("ingest", room.feed_url("world"))
    mark = len(site.requests)
    again = run("ingest", room.feed_url("world"))

    assert first.exit_code == 0, first.output
    assert f"skipped {site.url(hidden.path)}: disallowed by robots.txt" in first.stderr
    assert "2 added" in first.stderr
    assert hidden.path not in site.requests
    # Remembered: the next run asks neither the page nor robots.txt, and still says why.
    assert site.requests[mark:] == ["/world/feed.xml"]
    assert f"skipped {site.url(hidden.path)}: disallowed by robots.txt" in again.stderr


def test_a_robots_txt_that_cannot_be_read_leaves_the_pages_for_the_next_run(run, site, monkeypatch):
    monkeypatch.setenv("QA_FETCH_HOST_DELAY", "0")
    room = Newsroom.open(site, {"world": "etag"}, 2)
    robots = site.routes["/robots.txt"]
    site.routes["/robots.txt"] = Route(b"down", "text/plain", status=500)

    first = run("ingest", room.feed_url("world"))

    assert first.exit_code == 1, first.output
    assert "robots.txt could not be read (HTTP 500" in first.stderr
    assert not any("/story-" in path for path in site.requests)

    site.routes["/robots.txt"] = robots
    assert len(ingest(run, room.feed_url("world"))["added"]) == 2


def test_one_host_gets_one_request_at_a_time_with_the_pause_between(run, site, monkeypatch):
    monkeypatch.setenv("QA_FETCH_HOST_DELAY", "0.3")
    monkeypatch.setenv("QA_FETCH_CONCURRENCY", "4")
    room = Newsroom.open(site, {"world": "none"}, 4)

    ingest(run, room.feed_url("world"))

    hits = sorted(site.hits, key=lambda hit: hit.started)
    assert len(hits) == 6  # the feed, robots.txt and four pages
    for before, after in itertools.pairwise(hits):
        assert after.started >= before.finished + 0.29, (before.path, after.path)


def test_two_hosts_are_fetched_side_by_side(run, monkeypatch):
    monkeypatch.setenv("QA_FETCH_HOST_DELAY", "0.4")
    with serve_news_site() as first, serve_news_site() as second:
        rooms = [Newsroom.open(site, {"world": "none"}, 3) for site in (first, second)]
        ingest(run, *(room.feed_url("world") for room in rooms))

    # Each host alone takes at least 4 pauses (feed, robots.txt, three pages); side by side,
    # the second host's work starts well before the first one's ends.
    first_ends = max(hit.finished for hit in first.hits)
    second_starts = min(hit.started for hit in second.hits)
    assert first_ends - min(hit.started for hit in first.hits) >= 1.6
    assert second_starts < first_ends - 1.0


def test_a_crawl_delay_longer_than_the_setting_wins(run, site, monkeypatch):
    monkeypatch.setenv("QA_FETCH_HOST_DELAY", "0")
    room = Newsroom.open(site, {"world": "none"}, 3)
    site.routes["/robots.txt"] = Route(b"User-agent: qa-news\nCrawl-delay: 1\n", "text/plain")

    ingest(run, room.feed_url("world"))

    pages = sorted((hit for hit in site.hits if "/story-" in hit.path), key=lambda h: h.started)
    assert len(pages) == 3
    for before, after in itertools.pairwise(pages):
        assert after.started >= before.finished + 0.99


def test_a_site_that_answers_a_page_with_429_is_left_alone_for_the_rest_of_the_run(
    run, site, monkeypatch
):
    monkeypatch.setenv("QA_FETCH_HOST_DELAY", "0")
    room = Newsroom.open(site, {"world": "none"}, 4)
    newest = room.stories[-1]
    page = site.routes[newest.path]
    site.routes[newest.path] = Route(b"slow down", "text/plain", status=429, headers={
        "Retry-After": "3600"
    })  # fmt: skip

    result = run("ingest", room.feed_url("world"))

    assert result.exit_code == 1, result.output  # no page could be read
    # The feed lists the newest first: the other three pages are not asked for.
    assert [path for path in site.requests if "/story-" in path] == [newest.path]
    assert f"skipped {site.url(newest.path)}: HTTP 429 Too Many Requests" in result.stderr
    assert result.stderr.count("not asked: the site answered HTTP 429") == 3

    site.routes[newest.path] = page
    assert len(ingest(run, room.feed_url("world"))["added"]) == 4


def test_retry_after_is_read_in_seconds_or_as_a_date():
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(minutes=2), usegmt=True)
    assert retry_after_seconds("120", now.timestamp()) == 120
    assert retry_after_seconds(later, now.timestamp()) == 120
    assert retry_after_seconds("soon", now.timestamp()) is None
    assert retry_after_seconds(None, now.timestamp()) is None


def test_backoff_doubles_with_each_failure_unless_the_server_says_how_long():
    backoff = Backoff(base=900)
    assert [backoff.delay(n, None) for n in (1, 2, 3)] == [900, 1800, 3600]
    assert backoff.delay(30, None) == MOST_BACKOFF
    assert backoff.delay(5, retry_after=120) == 120
