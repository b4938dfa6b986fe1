"""Saved news pages: the story is kept whole, and menus, captions, comments and banners are not."""

import json

import pytest

from qa.loading import load_articles
from tests.news_site import PAGES

EXPECTED = json.loads((PAGES / "pages.json").read_text(encoding="utf-8"))


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_saved_page_keeps_its_story_and_metadata_and_drops_the_boilerplate(name, tmp_path):
    expected = EXPECTED[name]
    page = tmp_path / name
    page.write_bytes((PAGES / name).read_bytes())

    loaded = load_articles([page])

    assert loaded.skipped == []
    (article,) = loaded.articles
    text = flat(article.text)
    missing = [paragraph[:60] for paragraph in expected["body"] if flat(paragraph) not in text]
    assert missing == []
    leaked = [phrase for phrase in expected["boilerplate"] if phrase in text]
    assert leaked == []
    assert article.title == expected["title"]
    # The headline is the title; the text starts with the story.
    assert not text.startswith(expected["title"])
    assert article.date == expected["date"]
    assert article.url == expected["url"]
    if expected["site"]:
        assert article.source == expected["site"]
    if expected["author"]:
        assert article.extra["author"] == expected["author"]


def test_every_quoted_span_of_a_page_is_exact(seeded, tmp_path):
    page = tmp_path / "related.html"
    page.write_bytes((PAGES / "related.html").read_bytes())
    assert seeded("ingest", page).exit_code == 0

    result = seeded("ask", "Why is Pelicia Hall leaving the Department of Corrections?", "--json")
    assert result.exit_code == 0, result.output
    (article,) = load_articles([page]).articles
    citations = json.loads(result.stdout)["citations"]
    assert citations
    for citation in citations:
        if citation["article_id"] == "related":
            assert article.text[citation["start"] : citation["end"]] == citation["quote"]
