"""The article in a news page: its main text and metadata, without menus, captions or comments."""

import logging
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

# A sentence: four words or more, then a full stop, question or exclamation mark.
SENTENCE = re.compile(r"(\w+\W+){3,}\w+[.!?]")


@dataclass(frozen=True)
class PageArticle:
    """What a page says about its own article; any field but `text` may be missing."""

    text: str
    title: str | None
    date: str | None
    author: str | None
    site: str | None
    url: str | None


def extract_article(html: str | bytes, url: str | None = None) -> PageArticle | None:
    """The page's article, or None when it holds no article text.

    `url` is where the page was read; the page's canonical link takes its place when there is
    one. Bytes are decoded by the page's own charset declaration.
    """
    import trafilatura

    # The extractor logs every page it gives up on; the caller reports that in its own words.
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    document = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        # Short pages otherwise fall back to all their text, menus included.
        favor_precision=True,
        include_images=False,
        # Only the page's own metadata dates it: a date guessed from its text is often another
        # event's. Later than today is a template or a typo.
        date_extraction_params={
            "original_date": True,
            "extensive_search": False,
            "max_date": date.today().isoformat(),
        },
    )
    if document is None:
        return None
    # Paragraphs come one to a line; a blank line between them, as in the other formats.
    paragraphs = [line.strip() for line in (document.text or "").splitlines() if line.strip()]
    if paragraphs and document.title and same_words(paragraphs[0], document.title):
        # The headline is the title, not the story's first paragraph: an answer quoting it
        # would only repeat the title.
        paragraphs = paragraphs[1:]
    text = "\n\n".join(paragraphs)
    if not SENTENCE.search(text):
        # On a page with no story the extractor falls back to whatever text is left: a menu.
        return None
    return PageArticle(
        text=text,
        title=document.title or None,
        date=document.date or None,
        author=document.author or None,
        site=declared_site(document.sitename, url),
        url=document.url or url,
    )


def declared_site(site: str | None, url: str | None) -> str | None:
    """The page's own site name; the extractor's stand-in, the URL's host, is not one."""
    if not site or not url:
        return site or None
    parts = urlsplit(url)
    hosts = {(parts.netloc or "").lower(), (parts.hostname or "").lower()}
    return (
        None
        if site.lower().removeprefix("www.") in {h.removeprefix("www.") for h in hosts}
        else site
    )


def same_words(first: str, second: str) -> bool:
    return first.split() == second.split() or first.casefold() == second.casefold()
