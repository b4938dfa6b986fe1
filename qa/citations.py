"""Map `[n]` markers in an answer to passages and to verbatim quoted spans."""

import re
import sys
from dataclasses import dataclass, field

from qa.sentences import split_sentences
from qa.types import Answer, Citation, Passage
from qa.words import content_words

# The refusal sentence: used by the prompts, the extractive answerer, parsing and tests.
NO_ANSWER = "The articles do not say."
# A marker is a bracketed list of integers: `[1]`, `[1, 2]`, `[ 3 ]`, `[1; 2]`, `[-1]`, `[01]`.
# Each integer is read by its value, as `int` reads it (a sign, leading zeros, any script's
# digits: `[01]` and a full-width one are `[1]`), and names passage n when 1 <= n <= the
# passages; every other one is dropped. So no marker-shaped text survives unchecked; anything
# else in brackets (`[sic]`, `[1-3]`) is left alone.
NUMBER = r"\s*[+\-\u2212]?\d+\s*"
MARKER_GROUP = re.compile(rf"\[({NUMBER}(?:[,;]{NUMBER})*)\]")
MARKERS_AT_END = re.compile(rf"(?:\s*{MARKER_GROUP.pattern})*\s*$")
MAX_NUMBER_CHARS = 18
ABSTENTION = re.compile(
    r"\b(articles do not say|do(?:es)? not (?:say|mention|state|provide|contain|specify)|"
    r"(?:is|are) not (?:mentioned|stated|specified|given)|"
    r"(?:cannot|can't|unable to) (?:answer|determine|find)|no (?:information|mention))\b",
    re.IGNORECASE,
)


@dataclass
class VerifiedText:
    """An answer text whose every marker maps to a citation; `dropped` lists unknown ones."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


def verify_citations(draft: str, passages: list[Passage]) -> VerifiedText:
    """Keep markers that name a passage sharing words with their claim, renumber them 1..
    by first use, drop the rest."""
    result = VerifiedText(text="")
    by_passage: dict[int, Citation] = {}
    pieces: list[str] = []
    last = 0
    for match in MARKER_GROUP.finditer(draft):
        pieces.append(draft[last : match.start()])
        last = match.end()
        claim = _claim_before(draft, match.start())
        if not content_words(claim):
            # A marker that leads its line ("[1] The Kremlin said ...") vouches for what follows.
            claim = _claim_after(draft, match.end())
        kept = []
        for number in _numbers(match.group(1)):
            if not 1 <= number <= len(passages):
                if number not in result.dropped:
                    result.dropped.append(number)
                continue
            if number not in by_passage:
                quoted = best_quote(claim, passages[number - 1])
                if quoted is None:
                    if number not in result.dropped:
                        result.dropped.append(number)
                    continue
                quote, start, end = quoted
                citation = Citation(len(by_passage) + 1, passages[number - 1], quote, start, end)
                by_passage[number] = citation
                result.citations.append(citation)
            if by_passage[number].marker not in kept:
                kept.append(by_passage[number].marker)
        pieces.append("".join(f"[{marker}]" for marker in kept))
    pieces.append(draft[last:])
    result.text = _tidy("".join(pieces))
    return result


def checked_answer(
    question: str, draft: str, passages: list[Passage], answerer: str, model: str | None
) -> Answer:
    """The draft with its markers verified, and whether it abstains or lacks any citation."""
    verified = verify_citations(draft, passages)
    refused = strip_markers_and_space(verified.text).startswith(NO_ANSWER)
    abstained = refused or (not verified.citations and is_abstention(verified.text))
    citations = [] if refused else verified.citations
    return Answer(
        question=question,
        text=NO_ANSWER if refused else verified.text,
        citations=citations,
        passages=passages,
        abstained=abstained,
        answerer=answerer,
        model=model,
        unsupported=not abstained and not citations,
        dropped_markers=verified.dropped,
    )


def strip_markers_and_space(text: str) -> str:
    return " ".join(MARKER_GROUP.sub(" ", text).split())


def is_abstention(text: str) -> bool:
    """Whether an answer says the passages do not hold the answer."""
    return bool(ABSTENTION.search(text))


def best_quote(claim: str, passage: Passage) -> tuple[str, int, int] | None:
    """The passage sentence sharing most words with `claim`, with offsets into the article;
    None when no sentence shares a content word with it: the passage does not back the claim.
    """
    sentences = split_sentences(passage.text, offset=passage.start)
    claim_words = content_words(claim)
    overlap = [(len(claim_words & content_words(s.text)), s) for s in sentences]
    shared, best = max(overlap, key=lambda pair: pair[0], default=(0, None))
    if best is None or shared == 0:
        return None
    return best.text, best.start, best.end


def citation_for_span(marker: int, passage: Passage, start: int, end: int) -> Citation:
    """A citation quoting `passage` between article offsets `start` and `end`."""
    quote = passage.text[start - passage.start : end - passage.start]
    return Citation(marker, passage, quote, start, end)


def strip_markers(text: str) -> str:
    return _tidy(MARKER_GROUP.sub("", text))


def _numbers(group: str) -> list[int]:
    """The integers of a marker's group, read as `MARKER_GROUP` says."""
    return [_value(number) for number in re.split(r"[,;]", group)]


def _value(number: str) -> int:
    # `int` knows no typographic minus sign, and refuses numbers of thousands of digits;
    # those name no passage anyway, and stand for the largest one.
    number = number.strip().replace("\u2212", "-")
    if len(number) > MAX_NUMBER_CHARS:
        return -sys.maxsize if number.startswith("-") else sys.maxsize
    return int(number)


def _claim_before(text: str, position: int) -> str:
    """The words a marker at `position` vouches for: back to the previous marker or sentence.

    Markers right before it (`[1][2]`) and the claim's own full stop (`... 755 people. [1]`)
    are skipped, so each marker of a group vouches for the same words.
    """
    before = MARKERS_AT_END.sub("", text[:position]).rstrip(" \t.!?")
    previous = max(before.rfind("]"), *(before.rfind(end) for end in (". ", "! ", "? ", "\n")))
    return before[previous + 1 :]


def _claim_after(text: str, position: int) -> str:
    """The words after a marker, up to the next marker or the end of their sentence."""
    after = MARKER_GROUP.split(text[position:], maxsplit=1)[0]
    return re.split(r"(?<=[.!?])\s|\n\s*\n", after.strip(), maxsplit=1)[0]


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()
