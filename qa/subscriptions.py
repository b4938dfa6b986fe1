"""Subscription lists: an OPML file, as every feed reader exports its feeds, or a plain text
file of URLs, one a line."""

from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

from qa.errors import InputError
from qa.web import is_url

OPML_SUFFIXES = {".opml"}
# A list of feeds, however long, is far smaller; anything larger is not one.
MAX_LIST_BYTES = 10_000_000


def subscribed_sources(sources: Iterable[str], feed_lists: Iterable[Path]) -> list[str]:
    """`sources` with each OPML file among them replaced by its feeds, then the URLs of each
    list in `feed_lists`; each source once."""
    found: list[str] = []
    for source in sources:
        if not is_url(source) and Path(source).suffix.lower() in OPML_SUFFIXES:
            found.extend(opml_feeds(Path(source)))
        else:
            found.append(source)
    for path in feed_lists:
        found.extend(listed_urls(path))
    return list(dict.fromkeys(found))


def opml_feeds(path: Path) -> list[str]:
    """The feed URL (`xmlUrl`) of every outline in an OPML file, folders included, in order."""
    # expat refuses entity expansion bombs, and ElementTree fetches no external entity.
    try:
        root = ElementTree.fromstring(read_list(path))
    except ElementTree.ParseError as error:
        raise InputError(f"{path} is not a valid OPML file: {error}.") from None
    if root.tag.lower() != "opml":
        raise InputError(f"{path} is not an OPML file (its root element is <{root.tag}>).")
    urls = []
    for outline in root.iter():
        if outline.tag.lower() != "outline":
            continue
        url = next((v for k, v in outline.attrib.items() if k.lower() == "xmlurl"), "").strip()
        if url:
            urls.append(url)
    if not urls:
        raise InputError(f"No feeds in {path}: no outline has an xmlUrl.")
    return urls


def listed_urls(path: Path) -> list[str]:
    """The URLs of a text file, one a line; blank lines and `#` comments are left out."""
    urls = []
    for number, line in enumerate(read_list(path).decode("utf-8-sig", "replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not is_url(line):
            raise InputError(
                f"{path}:{number} is not a URL: {line[:80]!r}.",
                "List one http(s) feed URL a line; # starts a comment.",
            )
        urls.append(line)
    if not urls:
        raise InputError(f"No URLs in {path}.", "List one http(s) feed URL a line.")
    return urls


def read_list(path: Path) -> bytes:
    try:
        if not path.is_file():
            what = "a folder" if path.is_dir() else "no such file"
            raise InputError(f"Cannot read the feed list {path}: {what}.")
        if path.stat().st_size > MAX_LIST_BYTES:
            raise InputError(f"{path} is too large for a list of feeds (over 10 MB).")
        return path.read_bytes()
    except OSError as error:
        message = (error.strerror or str(error)).lower()
        raise InputError(f"Cannot read the feed list {path}: {message}.") from None
