"""Load news articles from .txt, .md, .html, .json and .jsonl files."""

import codecs
import hashlib
import json
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import InputError

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
TITLE_FALLBACK_CHARS = 90
# Larger texts are refused before reading: no news article is this long, and embedding one
# would take minutes (a corpus belongs in .jsonl, where the limit applies to each record).
DEFAULT_MAX_ARTICLE_MB = 5.0
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Encodings no news file is written in today (classic Mac OS, DOS code pages, UTF-16/32
# without a byte-order mark): short texts fit them by accident, so they are never chosen.
OBSOLETE_ENCODING = re.compile(
    r"^(mac_|cp(037|273|424|437|500|720|737|775|85\d|86\d|1006|1026|1125|1140)$|utf_|hp_|kz|ptcp)"
)
# Candidates whose mess scores and language coherence differ by no more than these are a tie.
NEAR_TIE = 0.02
NEAR_TIE_COHERENCE = 0.1
# 8-bit text read as Windows-1252 is Western when few of its letters are outside ASCII.
WESTERN_MAX_ACCENTED_SHARE = 0.3


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

    @property
    def hash(self) -> str:
        """Content hash: changes when the text or any descriptive field changes."""
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


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    first_seen: dict[str, str] = field(default_factory=dict, repr=False)

    def add(self, item: Article | Skipped | Note, location: str) -> None:
        """Keep `item`; an article whose id is already taken is skipped, naming the first."""
        if isinstance(item, Skipped):
            self.skipped.append(item)
        elif isinstance(item, Note):
            self.notes.append(item)
        elif item.id in self.first_seen:
            reason = f"duplicate article id {item.id!r} (first seen in {self.first_seen[item.id]})"
            self.skipped.append(Skipped(item.path or location, reason))
        else:
            self.first_seen[item.id] = item.path or location
            self.articles.append(item)

    def extend(self, other: "LoadResult") -> None:
        self.skipped.extend(other.skipped)
        self.notes.extend(other.notes)
        for article in other.articles:
            self.add(article, article.path or article.id)


def load_articles(
    paths: Iterable[Path], max_article_mb: float = DEFAULT_MAX_ARTICLE_MB
) -> LoadResult:
    """Load every supported file under `paths`; unreadable ones are skipped with a reason."""
    result = LoadResult()
    for file in iter_article_files(paths):
        for item in load_file(file, max_article_mb):
            result.add(item, str(file))
    return result


def iter_article_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files to load, in a stable order; a missing path is an input error."""
    paths = list(paths)
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise InputError(f"No such file or directory: {', '.join(missing)}.")
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
            yield from (p for p in files if p.suffix.lower() in SUPPORTED_SUFFIXES)
        else:
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
    try:
        raw = path.read_bytes()
    except OSError as error:
        yield Skipped(str(path), f"cannot read file: {error.strerror or error}")
        return
    text_or_reason = decode_text(raw)
    if isinstance(text_or_reason, Skipped):
        yield Skipped(str(path), text_or_reason.reason)
        return
    if suffix in JSON_SUFFIXES:
        yield from parse_json_articles(path, text_or_reason, max_article_mb)
    elif suffix in HTML_SUFFIXES:
        yield parse_html_article(path, text_or_reason)
    else:
        yield from parse_text_article(path, text_or_reason)


def refuse_before_reading(path: Path, max_article_mb: float) -> str | None:
    """Why the file must not be read at all: not a regular file (a pipe would block
    forever), or one article larger than the limit. A .jsonl corpus may be any size."""
    try:
        info = path.stat()
    except OSError as error:
        return f"cannot read file: {error.strerror or error}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if path.suffix.lower() != ".jsonl" and info.st_size > max_article_mb * 1_000_000:
        return too_large(info.st_size, max_article_mb)
    return None


def too_large(size: int, max_article_mb: float) -> str:
    return (
        f"{size / 1_000_000:.1f} MB is over the {max_article_mb:g} MB limit for one article "
        "(QA_MAX_ARTICLE_MB); split it into articles or raise the limit"
    )


def decode_text(raw: bytes) -> str | Skipped:
    """UTF-8 text, UTF-16/32 with a byte-order mark, or a detected encoding when the
    detection is clear (else Western single-byte text), or the reason there is none."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                return Skipped("", f"invalid {encoding.upper()} text")
    if not raw.strip():
        return Skipped("", "empty file")
    if b"\x00" in raw[:8192]:
        return Skipped("", "binary file (contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    return detect_encoding(raw)


def detect_encoding(raw: bytes) -> str | Skipped:
    """The detector's choice when no plausible candidate reads the bytes nearly as well;
    Western text (Windows-1252) between near ties; otherwise the reason to skip.

    Short texts fit several single-byte encodings equally, and taking the first of a tie
    turns "café" into "cafť".
    """
    from charset_normalizer import from_bytes

    matches = [
        match
        for match in from_bytes(raw)
        if match.chaos <= 0.2 and not OBSOLETE_ENCODING.match(match.encoding)
    ]
    if matches:
        best = min(matches, key=lambda match: (match.chaos, -match.coherence))
        ties = [
            match
            for match in matches
            if match.chaos - best.chaos <= NEAR_TIE
            and best.coherence - match.coherence <= NEAR_TIE_COHERENCE
        ]
        if len({str(match) for match in ties}) == 1:
            return str(best)
    western = western_text(raw)
    if western is not None:
        return western
    if not matches:
        return Skipped("", "not UTF-8 and its encoding could not be detected")
    names = ", ".join(sorted({match.encoding for match in ties}))
    return Skipped("", f"encoding is ambiguous ({names}); convert the file to UTF-8")


def western_text(raw: bytes) -> str | None:
    """The bytes as Windows-1252 if that reads as Western European text."""
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = [char for char in text if char.isalpha()]
    accented = sum(not char.isascii() for char in letters)
    if not letters or accented / len(letters) > WESTERN_MAX_ACCENTED_SHARE:
        return None
    return text


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
    """Articles from a JSON object or list, or from JSON Lines (one object a line).

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


@dataclass(frozen=True)
class JsonRecord:
    """One parsed JSON value, with the id an article from it takes when it has none."""

    data: object
    default_id: str
    location: str


def json_records(path: Path, text: str) -> Iterator[JsonRecord | Skipped]:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            yield Skipped(f"{path}:{error.lineno}", f"malformed JSON: {error.msg}")
            return
        records = data if isinstance(data, list) else [data]
        for index, record in enumerate(records, start=1):
            yield JsonRecord(record, f"{path.stem}-{index}", f"{path}[{index}]")
        return
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        location = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield Skipped(location, f"malformed JSON line: {error.msg}")
            continue
        yield JsonRecord(record, f"{path.stem}-{line_number}", location)


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


def normalise_date(value: str | None) -> str | None:
    """`YYYY-MM-DD` from an ISO date or timestamp; anything else is dropped."""
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


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
