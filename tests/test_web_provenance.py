"""A web article is cited by where it was read; the page's canonical link only when it is on
the same site, else it is kept beside the article as `canonical_url`."""

import json

import pytest

from qa.html_article import extract_article
from qa.settings import get_settings
from qa.store import Store
from tests.news_site import serve_news_site

FOREIGN = "https://www.nytimes.com/2023/03/07/world/europe/ferry-terminal.html"
STORY = """<p>The harbour authority in Port Elspeth said on Tuesday that the new ferry terminal
will open in the spring, two years later than planned, after a dispute over dredging.</p>
<p>Officials said the terminal would handle up to 40 sailings a day once both berths are in
service, and that fares would not rise to cover the delay.</p>"""


def page_naming(canonical: str, *, og_url: str | None = None) -> str:
    og = f'<meta property="og:url" content="{og_url}">' if og_url else ""
    return (
        "<html><head><title>Ferry terminal delayed</title>"
        f'<link rel="canonical" href="{canonical}">'
        f"{og}</head><body><article>{STORY}</article></body></html>"
    )


def test_a_page_claiming_another_sites_canonical_url_is_cited_where_it_was_read(run):
    with serve_news_site() as site:
        page = site.page("/local/ferry-terminal", page_naming(FOREIGN))
        result = run("ingest", page, "--json")
    assert result.exit_code == 0, result.output
    (article_id,) = json.loads(result.stdout)["added"]
    assert "nytimes" not in article_id

    listed = run("sources", "--json")
    (record,) = json.loads(listed.stdout)
    assert record["url"] == page
    assert "nytimes" not in (record["source"] or "")
    # The page's claim is kept, labelled as what it is.
    article = Store.open(get_settings()).article(article_id)
    assert article.extra["canonical_url"] == FOREIGN

    answer = run("ask", "How many sailings a day will the ferry terminal handle?", "--json")
    citations = json.loads(answer.stdout)["citations"]
    assert citations and {citation["url"] for citation in citations} == {page}
    assert not any("nytimes" in (citation["source"] or "") for citation in citations)


@pytest.mark.parametrize(
    ("read_at", "canonical"),
    [
        ("https://www.courier.example/amp/story", "https://courier.example/2023/story"),
        ("https://m.news.bbc.co.uk/story", "https://www.bbc.co.uk/news/story"),
        ("http://203.0.113.7/story", "http://203.0.113.7/2023/story"),
    ],
)
def test_a_canonical_url_on_the_same_site_is_the_url_cited(read_at, canonical):
    page = extract_article(page_naming(canonical), url=read_at)
    assert (page.url, page.canonical_url) == (canonical, None)


@pytest.mark.parametrize(
    ("read_at", "canonical"),
    [
        ("http://127.0.0.1:8000/story", FOREIGN),
        ("https://courier.example/story", "https://evil-courier.example/story"),
        ("https://bbc.co.uk/story", "https://spoof.co.uk/story"),
        ("https://news.example.com/story", "https://other.com/story"),
        ("http://203.0.113.7/story", "http://203.0.113.8/story"),
        ("http://127.0.0.1/story", "http://localhost/story"),
    ],
)
def test_a_canonical_url_on_another_site_is_kept_apart(read_at, canonical):
    page = extract_article(page_naming(canonical), url=read_at)
    assert (page.url, page.canonical_url) == (read_at, canonical)
    assert page.site is None  # the other site's host is no name the page gave itself


def test_an_og_url_on_another_site_is_not_cited_either():
    read_at = "http://127.0.0.1:8000/story"
    page = extract_article(page_naming("/story", og_url=FOREIGN), url=read_at)
    assert page.url == read_at
