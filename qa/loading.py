"""Load news articles from .txt, .md, .html, .json and .jsonl files."""

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import InputError
from qa.json_text import UnreadableJSON, json_lines, parse_json
from qa.settings import Settings
from qa.text_encodings import UnreadableText, decode_text

if TYPE_CHECKING:
    from qa.html_article import PageArticle

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES

TEXT_FIELDS = ("text", "body", "content")
DATE_FIELDS = ("date", "published_at", "published", "publish_date")
KNOWN_FIELDS = {"id", "title", "source", "url", *TEXT_FIELDS, *DATE_FIELDS}

# The seed format: an optional leading `date YYYY-MM-DD` header before the body.
DATE_HEADER = re.compile(r"\A\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*\n?\s*", re.IGNORECASE)
ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TITLE_FALLBACK_CHARS = 90
# Larger texts are refused before reading: no news article is this long, and embedding one
# would take minutes (a corpus belongs in .jsonl, where the limit applies to each record).
DEFAULT_MAX_ARTICLE_MB = Settings.model_fields["max_article_mb"].default
NO_WORDS = "no words in the article text (only punctuation or symbols)"
# A .jsonl file whose first this-many records are all questions is a test set.
TEST_SET_SNIFF_LINES = 200
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Article:
    """One news article; `text` is what chunk and citation offsets point into."""

    id: str
    title: str
    text: str
    date: str | None = None
    source: str | None = None
    url: str | None = None
    path: str | None = None
    extra: dict[str, str | int | float | bool] = field(default_factory=dict)

    @cached_property
    def hash(self) -> str:
        """Content hash: changes when the text or any descriptive field changes (computed
        once: an article's fields never change)."""
        payload = json.dumps(
            [self.title, self.text, self.date, self.source, self.url, sorted(self.extra.items())]
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Skipped:
    """A file or record that was not loaded, and why."""

    location: str
    reason: str


@dataclass(frozen=True)
class Note:
    """Something in an article that was ignored; the article itself was loaded."""

    location: str
    message: str


@dataclass(frozen=True)
class Unchanged:
    """An article known to be as the store holds it without reading it again (a feed entry
    not updated, a page answered 304 Not Modified)."""

    article_id: str
    location: str


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    ids: "IdSpace" = field(default_factory=lambda: IdSpace(), repr=False)

    def add(self, item: Article | Skipped | Note, location: str) -> None:
        """Keep `item`; an article whose id is already taken is skipped, naming the first."""
        self.keep(self.ids.checked(item, location))

    def keep(self, item: Article | Skipped | Note) -> None:
        if isinstance(item, Skipped):
            self.skipped.append(item)
        elif isinstance(item, Note):
            self.notes.append(item)
        else:
            self.articles.append(item)


class IdSpace:
    """The article ids seen so far, and where each was first seen: one id, one article."""

    def __init__(self) -> None:
        self.first_seen: dict[str, str] = {}

    def checked(self, item: Article | Skipped | Note, location: str) -> Article | Skipped | Note:
        """`item`, or a skip naming where an article of the same id was first seen."""
        if not isinstance(item, Article):
            return item
        first = self.first_seen.get(item.id)
        if first is not None:
            reason = f"duplicate article id {item.id!r} (first seen in {first})"
            return Skipped(item.path or location, reason)
        self.first_seen[item.id] = item.path or location
        return item


def load_articles(
    paths: Iterable[Path], max_article_mb: float = DEFAULT_MAX_ARTICLE_MB
) -> LoadResult:
    """Load every supported file under `paths`; unreadable ones are skipped with a reason."""
    result = LoadResult()
    for item in stream_articles(paths, max_article_mb, result.ids):
        result.keep(item)
    return result


def stream_articles(
    paths: Iterable[Path],
    max_article_mb: float = DEFAULT_MAX_ARTICLE_MB,
    ids: IdSpace | None = None,
) -> Iterator[Article | Skipped | Note]:
    """Every article, skip and note under `paths`, one at a time, so that memory does not
    grow with the input; a repeated article id is a skip."""
    ids = ids or IdSpace()
    for entry in article_paths(paths):
        if isinstance(entry, Skipped):
            yield entry
            continue
        for item in load_file(entry, max_article_mb):
            yield ids.checked(item, str(entry))


def iter_article_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files to load, in a stable order; a missing path is an input error."""
    return (entry for entry in article_paths(paths) if isinstance(entry, Path))


def article_paths(paths: Iterable[Path]) -> Iterator[Path | Skipped]:
    """Files to load in a stable order, and the folders among them that cannot be listed.

    Folders yield every entry with a supported suffix that is not a folder, so a pipe or a
    broken link is reported by `load_file` rather than passed over. A missing path is an
    input error.
    """
    paths = list(paths)
    missing = [str(path) for path in paths if not path.exists() and not path.is_symlink()]
    if missing:
        raise InputError(f"No such file or directory: {', '.join(missing)}.")
    for path in paths:
        if path.is_dir():
            yield from folder_paths(path)
        else:
            yield path


def folder_paths(folder: Path) -> Iterator[Path | Skipped]:
    """Supported entries under `folder` by name, depth first, leaving out hidden names and
    not following links to folders (they can loop)."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        yield Skipped(str(folder), cannot_read(error))
        return
    for entry in entries:
        path = folder / entry.name
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from folder_paths(path)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield path


def load_file(
    path: Path, max_article_mb: float = DEFAULT_MAX_ARTICLE_MB
) -> Iterator[Article | Skipped | Note]:
    """Articles in one file, or the reason it cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        yield Skipped(str(path), f"unsupported file type (supported: {kinds})")
        return
    refusal = refuse_before_reading(path, max_article_mb)
    if refusal:
        yield Skipped(str(path), refusal)
        return
    if suffix == ".jsonl":
        yield from stream_json_lines(path, max_article_mb)
        return
    try:
        raw = path.read_bytes()
    except OSError as error:
        yield Skipped(str(path), cannot_read(error))
        return
    try:
        decoded = decode_text(raw)
    except UnreadableText as error:
        yield Skipped(str(path), error.reason)
        return
    if decoded.note:
        yield Note(str(path), decoded.note)
    if suffix in JSON_SUFFIXES:
        yield from parse_json_articles(path, decoded.text, max_article_mb)
    elif suffix in HTML_SUFFIXES:
        yield parse_html_article(path, decoded.text)
    else:
        yield from parse_text_article(path, decoded.text)


def refuse_before_reading(path: Path, max_article_mb: float) -> str | None:
    """Why the file must not be read at all: a broken link, not a regular file (a pipe would
    block forever), or one article larger than the limit. A .jsonl corpus may be any size."""
    try:
        info = path.stat()
    except OSError as error:
        return "broken link" if path.is_symlink() else cannot_read(error)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if path.suffix.lower() != ".jsonl" and info.st_size > max_article_mb * 1_000_000:
        return too_large(info.st_size, max_article_mb)
    return None


def cannot_read(error: OSError) -> str:
    return f"cannot read: {(error.strerror or str(error)).lower()}"


def too_large(size: int, max_article_mb: float) -> str:
    return (
        f"{size / 1_000_000:.1f} MB is over the {max_article_mb:g} MB limit for one article "
        "(QA_MAX_ARTICLE_MB); split it into articles or raise the limit"
    )


def parse_text_article(path: Path, text: str) -> Iterator[Article | Skipped | Note]:
    """A plain-text or Markdown article, with an optional `date YYYY-MM-DD` first line."""
    article_date = None
    header = DATE_HEADER.match(text)
    if header:
        article_date = header.group(1)
        text = text[header.end() :]
    text = text.strip()
    if not text:
        yield Skipped(str(path), "no article text after the date line")
        return
    if not has_words(text):
        yield Skipped(str(path), NO_WORDS)
        return
    title = markdown_title(text) if path.suffix.lower() != ".txt" else None
    day = normalise_date(article_date)
    if article_date and not day:
        yield invalid_date(str(path), article_date)
    yield Article(
        id=path.stem,
        title=one_line(title) or fallback_title(text),
        text=text,
        date=day,
        source=None,
        path=str(path),
    )


def has_words(text: str) -> bool:
    """Whether `text` has a letter or a digit: punctuation alone says nothing to answer from."""
    return any(char.isalnum() for char in text)


def invalid_date(location: str, value: str) -> Note:
    return Note(location, f"invalid date {value!r} ignored (expected YYYY-MM-DD)")


def one_line(text: str | None) -> str:
    """Titles and other labels on one line: they are shown and quoted as single lines."""
    return " ".join((text or "").split())


def parse_html_article(path: Path, html: str) -> Article | Skipped:
    """A saved news page: its article's text, title, date, site, canonical URL and author."""
    from qa.html_article import extract_article

    page = extract_article(html)
    if page is None:
        return Skipped(str(path), "no article text found in the HTML page")
    return article_from_page(page, article_id=path.stem, location=str(path))


def article_from_page(
    page: "PageArticle",
    *,
    article_id: str,
    location: str,
    title: str | None = None,
    day: str | None = None,
    source: str | None = None,
) -> Article:
    """An article from an extracted page; `title`, `day` and `source` fill what it lacks."""
    return Article(
        id=article_id,
        title=one_line(page.title) or one_line(title) or fallback_title(page.text),
        text=page.text,
        date=normalise_date(page.date) or day,
        source=one_line(page.site) or source,
        url=page.url,
        path=location,
        extra={"author": one_line(page.author)} if page.author else {},
    )


def parse_json_articles(
    path: Path, text: str, max_article_mb: float = DEFAULT_MAX_ARTICLE_MB
) -> Iterator[Article | Skipped | Note]:
    """Articles from a JSON object or list (JSON Lines: `stream_json_lines`).

    A test set for `qa eval` often sits beside its corpus; it is skipped as one file, not as
    one "no article text" per question.
    """
    items = list(json_records(path, text))
    if items and all(isinstance(item, JsonRecord) and is_question(item.data) for item in items):
        yield Skipped(str(path), "a qa eval test set (questions, no article text)")
        return
    for item in items:
        if isinstance(item, JsonRecord):
            yield from article_from_record(item, max_article_mb)
        else:
            yield item


def stream_json_lines(path: Path, max_article_mb: float) -> Iterator[Article | Skipped | Note]:
    """A JSON Lines corpus one line at a time, so a file of any size takes little memory.

    The first records are held back until one is an article: a test set beside its corpus is
    skipped as one file, as in `parse_json_articles`.
    """
    held: list[JsonRecord | Skipped] = []
    articles_seen = False
    recoded: list[int] = []
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        if b"\x00" in head:
            yield Skipped(str(path), "binary file (contains NUL bytes)")
            return
        file.seek(0)
        for item in json_line_records(path, file, recoded):
            if articles_seen:
                yield from records_as_articles([item], max_article_mb)
                continue
            held.append(item)
            if isinstance(item, JsonRecord) and not is_question(item.data):
                articles_seen = True
                yield from records_as_articles(held, max_article_mb)
                held = []
            elif len(held) >= TEST_SET_SNIFF_LINES:
                break
    if not articles_seen:
        if not held:
            yield Skipped(str(path), "empty file")
        elif all(isinstance(item, JsonRecord) for item in held):
            yield Skipped(str(path), "a qa eval test set (questions, no article text)")
        else:
            yield from records_as_articles(held, max_article_mb)
    if recoded:
        yield Note(
            str(path),
            f"{len(recoded)} line(s) not UTF-8 (first: line {recoded[0]}), read in the "
            "encoding detected for each",
        )


def json_line_records(path: Path, file, recoded: list[int]) -> Iterator["JsonRecord | Skipped"]:
    """Each non-blank line of an open .jsonl file, parsed; lines not UTF-8 are decoded as
    detected and their numbers added to `recoded`."""
    line_number = 0
    for raw in file:
        decoded = raw.decode("utf-8-sig" if line_number == 0 else "utf-8", "replace")
        if "\ufffd" in decoded and "\ufffd".encode() not in raw:
            with suppress(UnreadableText):
                decoded = decode_text(raw).text
            recoded.append(line_number + 1)
        for line in json_lines(decoded.rstrip("\r\n")) if decoded.strip() else [""]:
            line_number += 1
            if not line.strip():
                continue
            location = f"{path}:{line_number}"
            try:
                record = parse_json(line)
            except UnreadableJSON as error:
                yield Skipped(location, f"malformed JSON line: {error.reason}")
                continue
            yield JsonRecord(record, f"{path.stem}-{line_number}", location)


def records_as_articles(
    items: Iterable["JsonRecord | Skipped"], max_article_mb: float
) -> Iterator[Article | Skipped | Note]:
    for item in items:
        if isinstance(item, JsonRecord):
            yield from article_from_record(item, max_article_mb)
        else:
            yield item


@dataclass(frozen=True)
class JsonRecord:
    """One parsed JSON value, with the id an article from it takes when it has none."""

    data: object
    default_id: str
    location: str


def json_records(path: Path, text: str) -> Iterator["JsonRecord | Skipped"]:
    """The records of a .json file: one object, or each object of a list."""
    try:
        data = parse_json(text)
    except UnreadableJSON as error:
        location = f"{path}:{error.line}" if error.line else str(path)
        yield Skipped(location, f"malformed JSON: {error.reason}")
        return
    records = data if isinstance(data, list) else [data]
    for index, record in enumerate(records, start=1):
        yield JsonRecord(record, f"{path.stem}-{index}", f"{path}[{index}]")


def is_question(data: object) -> bool:
    """A test-set line: a `question` and no article text."""
    return isinstance(data, dict) and "question" in data and not record_body(data).strip()


def record_body(record: dict) -> str:
    return next((record[key] for key in TEXT_FIELDS if isinstance(record.get(key), str)), "")


def article_from_record(
    item: JsonRecord, max_article_mb: float = DEFAULT_MAX_ARTICLE_MB
) -> Iterator[Article | Skipped | Note]:
    """One article from a JSON object; unknown scalar fields are kept as metadata."""
    record, location = item.data, item.location
    if not isinstance(record, dict):
        yield Skipped(location, "not a JSON object")
        return
    body = record_body(record)
    if not body.strip():
        yield Skipped(location, "no article text (expected a 'text', 'body' or 'content' field)")
        return
    if not has_words(body):
        yield Skipped(location, NO_WORDS)
        return
    if len(body) > max_article_mb * 1_000_000:
        yield Skipped(location, too_large(len(body), max_article_mb))
        return
    fields = {}
    for key in ("id", "title", "source", "url"):
        value = record.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            fields[key] = one_line(str(value))
        elif value not in (None, ""):
            yield Note(location, f"field {key!r} is not text ({type(value).__name__}); ignored")
    raw_date = next((record[key] for key in DATE_FIELDS if record.get(key)), None)
    day = normalise_date(str(raw_date)) if isinstance(raw_date, str | int) else None
    if raw_date and not day:
        yield invalid_date(location, str(raw_date))
    # Chroma keeps only scalars; lists and objects are kept as their JSON text.
    extra = {
        key: value if isinstance(value, str | int | float | bool) else json.dumps(value)
        for key, value in record.items()
        if key not in KNOWN_FIELDS and value is not None
    }
    yield Article(
        id=fields.get("id") or item.default_id,
        title=fields.get("title") or fallback_title(body),
        text=body,
        date=day,
        source=fields.get("source") or None,
        url=fields.get("url") or None,
        path=location,
        extra=extra,
    )


def parse_iso_date(text: str) -> str:
    """A date a user gives (a test set's `date`, `--as-of`), strictly YYYY-MM-DD.

    Raises ValueError otherwise: Python's own parser also takes 20220101 and 2022-W01-1.
    """
    if not ISO_DAY.fullmatch(text):
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date ({error})") from None


def normalise_date(value: str | None) -> str | None:
    """`YYYY-MM-DD` from an ISO date or timestamp in article data; anything else is dropped."""
    match = ISO_DATE.search(value or "")
    if not match:
        return None
    try:
        return date(*map(int, match.groups())).isoformat()
    except ValueError:
        return None


def markdown_title(text: str) -> str | None:
    first_line = text.lstrip().splitlines()[0]
    return first_line.lstrip("#").strip() or None if first_line.startswith("#") else None


def fallback_title(text: str) -> str:
    """The article's first sentence, shortened: there is no title in the data."""
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].strip()
    first = " ".join(first.split())
    if len(first) <= TITLE_FALLBACK_CHARS:
        return first
    return first[:TITLE_FALLBACK_CHARS].rsplit(" ", 1)[0] + "…"
