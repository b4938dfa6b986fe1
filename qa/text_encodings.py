"""A file's bytes as text: UTF-8, UTF-16/32 with a byte-order mark, or a detected encoding."""

import codecs
import re
from dataclasses import dataclass

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


class UnreadableText(ValueError):
    """Bytes that cannot be told as text; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Decoded:
    """A file's text, and a note when how it was read is a guess the user should know of."""

    text: str
    note: str | None = None


def decode_text(raw: bytes) -> Decoded:
    """UTF-8 text, UTF-16/32 with a byte-order mark, or text in another encoding when it can
    be told (see `decode_not_utf8`); else UnreadableText saying why there is none."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            try:
                return Decoded(raw.decode(encoding))
            except UnicodeDecodeError:
                raise UnreadableText(f"invalid {encoding.upper()} text") from None
    if not raw.strip():
        raise UnreadableText("empty file")
    if b"\x00" in raw[:8192]:
        raise UnreadableText("binary file (contains NUL bytes)")
    try:
        return Decoded(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return decode_not_utf8(raw)


def decode_not_utf8(raw: bytes) -> Decoded:
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
    return Decoded(raw.decode(detected_encoding(raw)))


def decode_partly_utf8(raw: bytes) -> Decoded:
    """Text with UTF-8 in it that is not all UTF-8, as when files in two encodings were
    joined: its UTF-8 text as UTF-8, the other bytes in their detected encoding."""
    # Undecodable bytes are held as surrogates, which encode back to the same bytes.
    text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8", "surrogateescape")
    rest = NON_ASCII_RUN.sub(lambda run: "" if is_utf8_text(run.group()) else run.group(), text)
    rest_bytes = rest.encode("utf-8", "surrogateescape")
    try:
        encoding = cyrillic_encoding(rest_bytes) or detected_encoding(rest_bytes)
    except UnreadableText:
        reason = f"partly UTF-8, and the encoding of the rest is unclear; {TO_UTF8}"
        raise UnreadableText(reason) from None

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


def detected_encoding(raw: bytes) -> str:
    """The detector's choice when no plausible candidate reads the bytes nearly as well;
    Western text (Windows-1252) between near ties; otherwise UnreadableText saying why.

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
        raise UnreadableText(f"not UTF-8, and its encoding could not be detected; {TO_UTF8}")
    raise UnreadableText(f"not UTF-8, and several encodings read it about as well; {TO_UTF8}")


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
