"""The article in a news page: its main text and metadata, without menus, captions or comments."""

import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

# A sentence: four words or more, then a full stop, question or exclamation mark.
SENTENCE = re.compile(r"(\w+\W+){3,}\w+[.!?]")
# Second-level labels under which a country's registry lets names be registered (`co.uk`).
COUNTRY_GENERIC_LEVELS = {"co", "com", "org", "net", "ac", "gov", "edu", "gob", "or", "ne", "go"}


@dataclass(frozen=True)
class PageArticle:
    """What a page says about its own article; any field but `text` may be missing."""

    text: str
    title: str | None
    date: str | None
    author: str | None
    site: str | None
    url: str | None
    # A canonical URL on another site than the page was read from: a claim, not where it is.
    canonical_url: str | None = None


def extract_article(html: str | bytes, url: str | None = None) -> PageArticle | None:
    """The page's article, or None when it holds no article text.

    `url` is where the page was read; the page's canonical link takes its place when it is on
    the same site, else it is `canonical_url`. Bytes are decoded by the page's own charset
    declaration.
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
    # The page's own URL: its canonical link, else og:url and the like, else `url`.
    declared = document.url or url
    cited = declared if not url or same_site(declared, url) else url
    return PageArticle(
        text=text,
        title=document.title or None,
        date=document.date or None,
        author=document.author or None,
        site=declared_site(document.sitename, [url, declared]),
        url=cited,
        canonical_url=declared if declared != cited else None,
    )


def declared_site(site: str | None, urls: list[str | None]) -> str | None:
    """The page's own site name; the extractor's stand-in, the host of a URL it read or was
    given, is not one."""
    if not site:
        return None
    hosts = set()
    for url in filter(None, urls):
        parts = urlsplit(url)
        hosts |= {(parts.netloc or "").lower(), (parts.hostname or "").lower()}
    stand_ins = {host.removeprefix("www.") for host in hosts}
    return None if site.lower().removeprefix("www.") in stand_ins else site


def same_site(first: str | None, second: str | None) -> bool:
    """Whether two URLs are on one site: the same host, or hosts under one registrable domain
    (`www.bbc.co.uk` and `news.bbc.co.uk`, not `bbc.co.uk` and `spoof.co.uk`)."""
    hosts = [(urlsplit(url or "").hostname or "").removesuffix(".") for url in (first, second)]
    if not all(hosts):
        return False
    if hosts[0] == hosts[1]:
        return True
    if any(is_ip_address(host) for host in hosts):
        return False
    return registrable_domain(hosts[0]) == registrable_domain(hosts[1])


def registrable_domain(host: str) -> str:
    """The part of `host` its owner registered, without the public suffix list: the last two
    labels, or three under a country's generic second level (`bbc.co.uk`, `abc.net.au`)."""
    labels = host.split(".")
    under_country_generic = (
        len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in COUNTRY_GENERIC_LEVELS
    )
    return ".".join(labels[-3:] if under_country_generic else labels[-2:])


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def same_words(first: str, second: str) -> bool:
    return first.split() == second.split() or first.casefold() == second.casefold()
