"""Load news articles from .txt, .md, .html, .json and .jsonl files."""

import codecs
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
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
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
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
# Characters that text in both UTF-8 and an 8-bit code page is made of: Western and Central
# European letters, Greek, Russian and other Cyrillic, typographic punctuation, €, № and ™.
# Bytes of an 8-bit text form valid UTF-8 only by chance, and then mostly as other characters.
TEXT_CHARS = (
    "\u00a0-\u017f\u0384-\u03ce\u0400-\u045f\u0490\u0491"
    "\u2010-\u2026\u2030\u2039\u203a\u20ac\u2116\u2122"
)
UTF8_TEXT_RUN = re.compile(f"[{TEXT_CHARS}]+")
UTF8_CYRILLIC_WORD = re.compile("[\u0400-\u045f]{3,}")
NON_ASCII_RUN = re.compile("[^\\x00-\\x7f]+")
# KOI8-U is KOI8-R with Ukrainian letters where KOI8-R has box-drawing characters, which no
# news text uses, so it reads both. DOS and Mac code pages are obsolete (see above).
CYRILLIC_ENCODINGS = ("cp1251", "koi8_u", "iso8859_5")
# The letters that make up about four fifths of Russian, Ukrainian, Bulgarian or Serbian text.
# A wrong code page reads capitals for small letters (KOI8 and Windows-1251 swap the cases)
# or rare letters for frequent ones (ISO 8859-5 read as either), which these shares catch.
FREQUENT_CYRILLIC = frozenset("оаеинтсрвлкмдпуі")
CYRILLIC_MIN_FREQUENT_SHARE = 0.65
CYRILLIC_MIN_LOWERCASE_SHARE = 0.5
CYRILLIC_MAX_ODD_CASE_SHARE = 0.1
# News text never draws boxes; KOI8 reads UTF-8 Cyrillic as letters and box-drawing pieces.
CYRILLIC_MAX_DRAWING_SHARE = 0.01
BOX_DRAWING = re.compile("[\u2500-\u259f]")
CYRILLIC_WORD = re.compile("[\u0400-\u04ff]+")
LATIN_LETTER = re.compile("[A-Za-z]")
# Enough text to tell a code page by.
ENCODING_SAMPLE_CHARS = 65_536
TO_UTF8 = "convert the file to UTF-8"
# No article record or test-set line nests deeper. Python's own limit depends on how deep the
# call stack already is, so without this the same file would load or not by caller.
MAX_JSON_DEPTH = 100
# Only these end a JSON Lines line: a JSON string may hold U+2028 and other characters at
# which str.splitlines() also breaks.
LINE_END = re.compile(r"\r\n|\r|\n")
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

    def extend(self, other: "LoadResult") -> None:
        self.skipped.extend(other.skipped)
        self.notes.extend(other.notes)
        for article in other.articles:
            self.add(article, article.path or article.id)


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
    decoded = decode_text(raw)
    if isinstance(decoded, Skipped):
        yield Skipped(str(path), decoded.reason)
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


@dataclass(frozen=True)
class Decoded:
    """A file's text, and a note when how it was read is a guess the user should know of."""

    text: str
    note: str | None = None


def decode_text(raw: bytes) -> Decoded | Skipped:
    """UTF-8 text, UTF-16/32 with a byte-order mark, or text in another encoding when it can
    be told (see `decode_not_utf8`); else the reason there is none."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            try:
                return Decoded(raw.decode(encoding))
            except UnicodeDecodeError:
                return Skipped("", f"invalid {encoding.upper()} text")
    if not raw.strip():
        return Skipped("", "empty file")
    if b"\x00" in raw[:8192]:
        return Skipped("", "binary file (contains NUL bytes)")
    try:
        return Decoded(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return decode_not_utf8(raw)


def decode_not_utf8(raw: bytes) -> Decoded | Skipped:
    """Bytes that are not all UTF-8: in the Cyrillic code page that reads them as Cyrillic,
    as UTF-8 joined with another encoding (with a note), or in the detected encoding."""
    as_utf8 = raw.decode("utf-8", "surrogateescape")
    # In Cyrillic code pages a small letter before ё is often valid UTF-8 by chance
    # (KOI8-R "дё" is UTF-8 "ģ"), but never a run of UTF-8 Cyrillic letters: a real word.
    cyrillic = cyrillic_encoding(raw)
    if cyrillic and not UTF8_CYRILLIC_WORD.search(as_utf8):
        return Decoded(raw.decode(cyrillic))
    if raw.startswith(codecs.BOM_UTF8) or any(map(is_utf8_text, NON_ASCII_RUN.findall(as_utf8))):
        return decode_partly_utf8(raw)
    encoding = detected_encoding(raw)
    return encoding if isinstance(encoding, Skipped) else Decoded(raw.decode(encoding))


def decode_partly_utf8(raw: bytes) -> Decoded | Skipped:
    """Text with UTF-8 in it that is not all UTF-8, as when files in two encodings were
    joined: its UTF-8 text as UTF-8, the other bytes in their detected encoding."""
    # Undecodable bytes are held as surrogates, which encode back to the same bytes.
    text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8", "surrogateescape")
    rest = NON_ASCII_RUN.sub(lambda run: "" if is_utf8_text(run.group()) else run.group(), text)
    rest_bytes = rest.encode("utf-8", "surrogateescape")
    encoding = cyrillic_encoding(rest_bytes) or detected_encoding(rest_bytes)
    if isinstance(encoding, Skipped):
        return Skipped("", f"partly UTF-8, and the encoding of the rest is unclear; {TO_UTF8}")

    def read_run(match: re.Match) -> str:
        run = match.group()
        if is_utf8_text(run):
            return run
        return run.encode("utf-8", "surrogateescape").decode(encoding, "replace")

    other_bytes = len(rest_bytes.translate(None, bytes(range(128))))
    note = (
        "encoding unclear (partly UTF-8): read as UTF-8 where the bytes are valid UTF-8 "
        f"and the other {other_bytes} non-ASCII bytes as {codecs.lookup(encoding).name}"
    )
    return Decoded(NON_ASCII_RUN.sub(read_run, text), note)


def is_utf8_text(run: str) -> bool:
    """Whether a run of non-ASCII characters read as UTF-8 is text: a run holding a byte
    that is not UTF-8 is all in the other encoding (in KOI8-R "идёт", "дё" alone would be
    UTF-8 "ģ"), and so is one that reads as characters no such text is made of."""
    return UTF8_TEXT_RUN.fullmatch(run) is not None


def detected_encoding(raw: bytes) -> str | Skipped:
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
            # Of the encodings that read the bytes alike, the most used one is named.
            alike = {name for match in ties for name in match.could_be_from_charset}
            return "cp1252" if "cp1252" in alike else best.encoding
    if reads_as_western(raw):
        return "cp1252"
    # Names of candidates would only be guesses, and some of them wrong.
    if not matches:
        return Skipped("", f"not UTF-8, and its encoding could not be detected; {TO_UTF8}")
    return Skipped("", f"not UTF-8, and several encodings read it about as well; {TO_UTF8}")


def cyrillic_encoding(raw: bytes) -> str | None:
    """The one Cyrillic code page that reads `raw` as Cyrillic text, if exactly one does."""
    fits = []
    for encoding in CYRILLIC_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if reads_as_cyrillic(text[:ENCODING_SAMPLE_CHARS]):
            fits.append(encoding)
    return fits[0] if len(fits) == 1 else None


def reads_as_cyrillic(text: str) -> bool:
    """Whether `text` reads as written in a Cyrillic alphabet: mostly Cyrillic letters,
    mostly small letters with capitals only where words start, and mostly the letters most
    frequent in these languages."""
    words = CYRILLIC_WORD.findall(text)
    letters = "".join(words)
    if not letters or len(letters) < len(LATIN_LETTER.findall(text)):
        return False
    lowercase = sum(letter.islower() for letter in letters)
    frequent = sum(letter in FREQUENT_CYRILLIC for letter in letters.lower())
    odd_case = sum(not (word.islower() or word.isupper() or word.istitle()) for word in words)
    drawing = len(BOX_DRAWING.findall(text))
    return (
        lowercase >= CYRILLIC_MIN_LOWERCASE_SHARE * len(letters)
        and frequent >= CYRILLIC_MIN_FREQUENT_SHARE * len(letters)
        and odd_case <= CYRILLIC_MAX_ODD_CASE_SHARE * len(words)
        and drawing <= CYRILLIC_MAX_DRAWING_SHARE * len(letters)
    )


def reads_as_western(raw: bytes) -> bool:
    """Whether the bytes as Windows-1252 read as Western European text."""
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        return False
    letters = [char for char in text if char.isalpha()]
    accented = sum(not char.isascii() for char in letters)
    return bool(letters) and accented / len(letters) <= WESTERN_MAX_ACCENTED_SHARE


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
            guess = decode_text(raw)
            if isinstance(guess, Decoded):
                decoded = guess.text
            recoded.append(line_number + 1)
        for line in LINE_END.split(decoded.rstrip("\r\n")) if decoded.strip() else [""]:
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
    if path.suffix.lower() == ".json":
        try:
            data = parse_json(text)
        except UnreadableJSON as error:
            location = f"{path}:{error.line}" if error.line else str(path)
            yield Skipped(location, f"malformed JSON: {error.reason}")
            return
        records = data if isinstance(data, list) else [data]
        for index, record in enumerate(records, start=1):
            yield JsonRecord(record, f"{path.stem}-{index}", f"{path}[{index}]")
        return
    for line_number, line in enumerate(json_lines(text), start=1):
        if not line.strip():
            continue
        location = f"{path}:{line_number}"
        try:
            record = parse_json(line)
        except UnreadableJSON as error:
            yield Skipped(location, f"malformed JSON line: {error.reason}")
            continue
        yield JsonRecord(record, f"{path.stem}-{line_number}", location)


class UnreadableJSON(ValueError):
    """Text that is not JSON qa can take in; `line` is where the parser stopped, when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def parse_json(text: str) -> object:
    """One JSON value, or UnreadableJSON saying why not.

    Besides malformed text, refuses what Python would read wrongly or fail on later: nesting
    deeper than MAX_JSON_DEPTH, numbers out of range, NaN and Infinity (not JSON, though
    Python reads them), and half of a surrogate pair (text that cannot be encoded).
    """
    try:
        value = json.loads(text, parse_float=finite_float, parse_constant=refuse_constant)
    except UnreadableJSON:
        raise
    except json.JSONDecodeError as error:
        raise UnreadableJSON(error.msg, error.lineno) from None
    except RecursionError:
        raise UnreadableJSON(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError:
        # Python refuses to read integers of more than 4300 digits.
        raise UnreadableJSON("a number has too many digits") from None
    check_json_value(value)
    return value


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text, numbered as an editor numbers them."""
    return LINE_END.split(text)


def finite_float(number: str) -> float:
    value = float(number)
    if math.isinf(value):
        raise UnreadableJSON("a number is out of range")
    return value


def refuse_constant(name: str) -> object:
    raise UnreadableJSON(f"{name} is not a JSON value")


def check_json_value(value: object) -> None:
    """Raise UnreadableJSON for nesting deeper than MAX_JSON_DEPTH or a string that cannot
    be encoded; iterative, as recursion is what deep nesting breaks."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and not encodable(item):
                raise UnreadableJSON("a string holds half of a UTF-16 surrogate pair")
        elif isinstance(item, dict | list):
            if depth == MAX_JSON_DEPTH:
                raise UnreadableJSON(f"nested more than {MAX_JSON_DEPTH} levels deep")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
