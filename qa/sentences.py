"""Split text into sentences, keeping each sentence's character span."""

import re
from dataclasses import dataclass

# Abbreviations that end in a period but rarely end a sentence in news text.
ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "gen", "lt", "col", "sgt", "capt",
    "st", "jr", "sr", "inc", "co", "corp", "ltd", "no", "vs", "etc", "e.g", "i.e", "approx",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mt", "ft", "pres", "rev", "hon", "dept", "univ", "est", "fig", "al",
}  # fmt: skip
# A candidate end: terminal punctuation, optional closing quotes/brackets, then white space.
CANDIDATE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
NEXT_STARTS_SENTENCE = re.compile(r"\s+[\"'“‘(\[]?[A-Z0-9]")
PARAGRAPH_BREAK = re.compile(r"\n\s*\n|\n(?=\S)")
WORD_BEFORE = re.compile(r"([A-Za-z.]+)\.$")


@dataclass(frozen=True)
class Span:
    """A stretch of text and its offsets into the text it was cut from."""

    start: int
    end: int
    text: str


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Sentences of `text`, with offsets shifted by `offset` (trimmed, never empty)."""
    spans: list[Span] = []
    for block_start, block_end in _blocks(text):
        start = block_start
        for match in CANDIDATE_END.finditer(text, block_start, block_end):
            end = match.end()
            if _ends_sentence(text, match.start(), end, block_end):
                spans.extend(_trimmed(text, start, end, offset))
                start = end
        spans.extend(_trimmed(text, start, block_end, offset))
    return spans


def _blocks(text: str) -> list[tuple[int, int]]:
    """Paragraphs (and single lines): a sentence never crosses a line break."""
    blocks, start = [], 0
    for match in PARAGRAPH_BREAK.finditer(text):
        blocks.append((start, match.start()))
        start = match.end()
    blocks.append((start, len(text)))
    return blocks


def _ends_sentence(text: str, punct_start: int, end: int, block_end: int) -> bool:
    if not NEXT_STARTS_SENTENCE.match(text, end, block_end):
        return False
    if text[punct_start] != ".":
        return True
    word = WORD_BEFORE.search(text, max(0, punct_start - 12), punct_start + 1)
    if not word:
        return True
    token = word.group(1).lower()
    # Initials ("J.") and dotted acronyms ("U.S.") rarely end a sentence.
    return not (token in ABBREVIATIONS or len(token) == 1 or "." in token)


def _trimmed(text: str, start: int, end: int, offset: int) -> list[Span]:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return []
    lead = len(piece) - len(piece.lstrip())
    begin = start + lead
    return [Span(begin + offset, begin + len(stripped) + offset, stripped)]
