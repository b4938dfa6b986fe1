"""Ingest from the web: article pages and feeds served on loopback, and each way a fetch fails."""

import json

import pytest

from tests.news_site import Route, atom, rss, saved_page

# A page with no title, no date and no site name of its own: the feed entry supplies them.
BARE_PAGE = """<html><body><div class="content">
<p>The harbour authority in Port Elspeth said on Tuesday that the new ferry terminal will open
in the spring, two years later than planned, after a dispute over the dredging contract.</p>
<p>Officials said the terminal would handle up to 40 sailings a day once both berths are in
service, and that fares would not rise to cover the delay.</p>
<p>The regional council approved an extra 12 million euros for the project last month.</p>
</div></body></html>"""
NO_ARTICLE_PAGE = (
    "<html><body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav></body></html>"
)


def ingest_json(run, *sources: str):
    result = run("ingest", *sources, "--json")
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def sources_by_url(run) -> dict[str, dict]:
    listed = run("sources", "--json")
    assert listed.exit_code == 0, listed.output
    return {record["url"]: record for record in json.loads(listed.stdout)}


def test_a_feed_brings_in_its_articles_with_titles_dates_and_urls_and_a_rerun_embeds_nothing(
    run, site
):
    monkeypox = site.page("/health/monkeypox-death", saved_page("classic.html"))
    darts = site.page("/sport/darts", saved_page("paywall.html"))
    ferry = site.page("/local/ferry-terminal", BARE_PAGE)
    site.routes["/feed.xml"] = Route(
        rss(
            [
                {"link": monkeypox, "title": "Feed title, not the page's", "date": "2022-09-13"},
                {"link": darts},
                {"link": ferry, "title": "Ferry terminal delayed again", "date": "2023-03-07"},
            ]
        ),
        "application/rss+xml",
    )

    first, report = ingest_json(run, site.url("/feed.xml"))
    assert first.exit_code == 0, first.output
    assert len(report["added"]) == 3 and report["skipped"] == []

    records = sources_by_url(run)
    # Pages are cited where they were read: their canonical links name other sites.
    courier = records[monkeypox]
    assert courier["title"] == "First US monkeypox death confirmed in Los Angeles County"
    assert courier["date"] == "2022-09-12"  # the page's own date wins over the feed's
    assert courier["source"] == "Daily Courier"
    weekly = records[darts]
    assert weekly["date"] == "2022-01-05"
    local = records[ferry]
    assert (local["title"], local["date"]) == ("Ferry terminal delayed again", "2023-03-07")
    assert local["source"] == "Loopback News"

    again, report = ingest_json(run, site.url("/feed.xml"))
    assert again.exit_code == 0, again.output
    assert report["added"] == [] and report["updated"] == []
    assert len(report["unchanged"]) == 3 and report["chunks_embedded"] == 0


def test_answers_cite_web_articles_by_their_url(run, site):
    page = site.page("/local/ferry-terminal", BARE_PAGE)
    site.routes["/feed.atom"] = Route(
        atom([{"link": page, "title": "Ferry terminal delayed again", "date": "2023-03-07"}]),
        "application/atom+xml",
    )
    assert run("ingest", site.url("/feed.atom")).exit_code == 0

    answer = run("ask", "How many sailings a day will the ferry terminal handle?", "--json")
    assert answer.exit_code == 0, answer.output
    data = json.loads(answer.stdout)
    assert data["citations"], data
    assert {citation["url"] for citation in data["citations"]} == {page}
    assert data["answer"].startswith("40")
    assert "up to 40 sailings a day" in data["citations"][0]["quote"]


def test_a_changed_story_is_embedded_again_and_the_others_are_not(run, site):
    ferry = site.page("/local/ferry-terminal", BARE_PAGE)
    darts = site.page("/sport/darts", saved_page("paywall.html"))
    site.routes["/feed.xml"] = Route(rss([{"link": ferry}, {"link": darts}]), "text/xml")
    assert run("ingest", site.url("/feed.xml")).exit_code == 0

    site.page("/local/ferry-terminal", BARE_PAGE.replace("40 sailings", "48 sailings"))
    result, report = ingest_json(run, site.url("/feed.xml"))
    assert result.exit_code == 0, result.output
    assert len(report["updated"]) == 1 and len(report["unchanged"]) == 1
    assert report["updated"][0].endswith("/local/ferry-terminal")


def test_each_failing_url_is_one_skipped_line_and_the_rest_is_ingested(run, site, monkeypatch):
    monkeypatch.setenv("QA_FETCH_TIMEOUT", "1")
    monkeypatch.setenv("QA_MAX_PAGE_MB", "0.05")
    good = site.page("/local/ferry-terminal", BARE_PAGE)
    site.routes["/slow"] = Route(BARE_PAGE.encode(), delay=3)
    site.routes["/trickle"] = Route(BARE_PAGE.encode(), trickle=0.05)
    site.routes["/report.pdf"] = Route(b"%PDF-1.7 ...", "application/pdf")
    site.routes["/menu"] = Route(NO_ARTICLE_PAGE.encode())
    site.routes["/huge"] = Route(b"<html><body>" + b"<p>word</p>" * 10_000 + b"</body></html>")
    site.routes["/broken.xml"] = Route(b"<rss><channel><item>", "application/rss+xml")
    site.routes["/moved"] = Route(status=301, location=good)
    feed_links = ["/gone", "/slow", "/trickle", "/report.pdf", "/menu", "/huge", "/moved"]
    site.routes["/feed.xml"] = Route(
        rss([{"link": site.url(path)} for path in feed_links]), "application/rss+xml"
    )

    result = run("ingest", site.url("/feed.xml"), site.url("/broken.xml"))

    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = [
        line.strip() for line in result.stderr.splitlines() if line.strip().startswith("skipped")
    ]
    reasons = {line.split(": ", 1)[0].removeprefix("skipped "): line for line in lines}
    assert "HTTP 404" in reasons[site.url("/gone")]
    assert "within 1s" in reasons[site.url("/slow")]
    assert "within 1s" in reasons[site.url("/trickle")]
    assert "application/pdf" in reasons[site.url("/report.pdf")]
    assert "no article text" in reasons[site.url("/menu")]
    assert "QA_MAX_PAGE_MB" in reasons[site.url("/huge")]
    assert "not a valid RSS or Atom feed" in reasons[site.url("/broken.xml")]
    assert len(lines) == 7
    # The redirect was followed: the article is stored under the page it led to.
    assert "1 added" in result.stderr
    assert good in sources_by_url(run)


def test_nothing_ingested_from_the_web_is_exit_1_and_writes_nothing(run, site):
    result = run("ingest", site.url("/gone"), site.url("/also-gone"))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.count("HTTP 404") == 2
    listed = run("sources", "--json")
    assert listed.exit_code != 0 or json.loads(listed.stdout) == []


def test_a_malformed_url_is_refused_before_anything_is_fetched(run, site, tmp_path):
    result = run("ingest", site.url("/feed.xml"), "http://")
    assert result.exit_code == 2
    assert "Not a valid URL: http://" in result.stderr
    assert site.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[::1/x",
        "http://[not-an-address]/",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://example.com:http/",
        "https://",
        "http:///path-only",
        "http://exa mple.com/news",
        "http://example.com/news story",
        "http://example.com/\tnews",
        "http://☃.net/",
        "http://xn--zz.com/",
        "http://" + "a" * 64 + ".com/",
    ],
)
def test_every_malformed_url_is_one_input_error_line(run, site, url):
    result = run("ingest", site.url("/feed.xml"), url)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("Not a valid URL") == 1
    assert len(result.stderr.strip().splitlines()) <= 2  # the error and its hint
    assert site.requests == []


def test_a_malformed_link_in_a_feed_is_one_skipped_line(run, site):
    good = site.page("/local/ferry-terminal", BARE_PAGE)
    links = [good, "http://[::1", "http://example.com:99999/", "http://xn--zz.com/"]
    site.routes["/feed.xml"] = Route(rss([{"link": link} for link in links]), "text/xml")

    result = run("ingest", site.url("/feed.xml"))

    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "1 added" in result.stderr
    assert "skipped http://example.com:99999/: not a valid URL: port out of range" in result.stderr
    assert "skipped http://xn--zz.com/: not a valid URL" in result.stderr
    # The feed reader itself drops a link it cannot read.
    assert "entry 2: the entry has no link" in result.stderr


@pytest.mark.parametrize("location", ["http://[::1", "http://xn--zz.com/", "http://h:99999/"])
def test_a_redirect_to_a_malformed_url_is_one_skipped_line(run, site, location):
    site.routes["/moved"] = Route(status=302, location=location)

    result = run("ingest", site.url("/moved"))

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert site.url("/moved") in line


def test_files_and_urls_in_one_ingest(run, site, tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "gallery.html").write_text(saved_page("gallery.html"), encoding="utf-8")
    page = site.page("/local/ferry-terminal", BARE_PAGE)

    result, report = ingest_json(run, str(folder), page)
    assert result.exit_code == 0, result.output
    assert sorted(report["added"]) == sorted(["gallery", "127.0.0.1:" + page.split(":")[2]])


def test_a_password_in_a_url_is_never_shown(run, site):
    url = site.url("/gone").replace("http://", "http://reader:s3cret-pass@")
    result = run("ingest", url)
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr
    assert "s3cret-pass" not in result.output
