"""The kind of answer a question asks for, and the one span of that kind a sentence holds."""

import re

from qa import calendar_words
from qa.calendar_words import alternatives
from qa.sentences import Span

MONTHS = alternatives(calendar_words.MONTHS + calendar_words.MONTH_ABBREVIATIONS)
WEEKDAYS = alternatives(calendar_words.WEEKDAYS)
NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    "fifty|sixty|seventy|eighty|ninety|hundred|dozen"
)
SCALE = r"(?:\s(?:hundred|thousand|million|billion|trillion))?"
# A unit after a number belongs to the answer ("380 years", "40 percent").
UNIT = (
    r"(?:\s(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?|miles?|kilometers?|km|"
    r"meters?|feet|foot|pounds?|kilograms?|kg|tons?|percent|per cent|degrees?|points?|votes?|"
    r"people|dollars?|euros?|seats?|times))?"
)
NUMBER = re.compile(
    rf"(?<![\w.,$])(?:\$|£|€)?\d[\d,]*(?:\.\d+)?(?:%|m|bn)?{SCALE}{UNIT}(?!\w)|"
    rf"\b(?:{NUMBER_WORDS}){SCALE}{UNIT}\b",
    re.IGNORECASE,
)
# A year is a date, not a count.
YEAR = re.compile(r"(1\d|20)\d\d")
DATE = re.compile(
    rf"\b(?:(?:{MONTHS})\s\d{{1,2}}(?:st|nd|rd|th)?(?:,\s\d{{4}})?|\d{{1,2}}\s(?:{MONTHS})"
    rf"(?:\s\d{{4}})?|(?:{MONTHS})\s\d{{4}}|(?:{WEEKDAYS})|(?:1[5-9]|20)\d\d(?:s)?)\b"
)
# A run of capitalised words, allowing the small words names contain ("Bank of America",
# "Bed Bath & Beyond"); it must end on a capitalised word.
NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s(?:of|the|de|da|van|von|del|la|&|and)?\s?[A-Z][\w'’.-]*)*")
# Capitalised only because they start a sentence or are common title words: never a name.
NOT_NAMES = (
    frozenset(
        [
            "A",
            "An",
            "The",
            "This",
            "That",
            "These",
            "Those",
            "It",
            "Its",
            "He",
            "She",
            "They",
            "We",
            "I",
            "You",
            "His",
            "Her",
            "Their",
            "Our",
            "In",
            "On",
            "At",
            "For",
            "From",
            "By",
            "With",
            "As",
            "But",
            "And",
            "Or",
            "If",
            "When",
            "Where",
            "Who",
            "What",
            "Which",
            "Why",
            "How",
            "After",
            "Before",
            "While",
            "Mr",
            "Mrs",
            "Ms",
            "Dr",
            "Sen",
            "Rep",
            "Gov",
            "Pres",
            "President",
            "Said",
            "Says",
            "According",
            "Also",
            "However",
            "There",
            "Here",
            "Last",
            "Next",
            "Earlier",
            "Later",
            "Today",
            "Yesterday",
            "Tomorrow",
        ]
    )
    | frozenset(word.rstrip(".") for word in calendar_words.MONTH_ABBREVIATIONS)
    | frozenset(calendar_words.MONTHS)
    | frozenset(calendar_words.WEEKDAYS)
)

ORGANISATION_NOUNS = (
    "company|companies|organi[sz]ation|team|agency|network|group|brand|firm|retailer|airline|"
    "bank|university|college|newspaper|magazine|party|league|club|automaker|carmaker|studio|"
    "platform|app|service|government|country's|chain|startup|manufacturer|publisher|court|"
    "committee|union|band|show|series|film|movie|game|website|company's"
)
PLACE_NOUNS = "country|city|state|region|province|county|town|island|nation|continent|capital"


def answer_kind(question: str) -> str | None:
    """number, time, person, place, organisation, or None when the question asks for more."""
    lowered = question.lower()
    if re.search(r"^(who|whom|whose)\b", lowered):
        return "person"
    if re.search(
        r"\bhow (many|much|long|old|far|tall|big)\b|\bwhat (number|percentage)\b", lowered
    ):
        return "number"
    if re.search(
        r"^when\b|\b(what|which|in what|in which) (year|day|date|month|decade)\b", lowered
    ):
        return "time"
    if re.search(rf"\b(what|which|in what|in which) ({PLACE_NOUNS})\b|^where\b", lowered):
        return "place"
    if re.search(rf"\b(what|which) ([a-z-]+ )?({ORGANISATION_NOUNS})\b", lowered):
        return "organisation"
    if re.search(r"\bwho (is|was|were|are|has|had|will|did)\b", lowered):
        return "person"
    return None


def short_answer(kind: str | None, sentence: str, question: str) -> Span | None:
    """The one span of `kind` in `sentence` that the question does not already name."""
    if kind is None:
        return None
    pattern = {"number": NUMBER, "time": DATE}.get(kind, NAME)
    asked = question.lower()
    asked_words = {re.sub(r"['’]s$", "", word) for word in re.findall(r"[\w'’]+", asked)}
    found = []
    for match in pattern.finditer(sentence):
        start, end = match.span()
        if kind in ("person", "place", "organisation"):
            start, end = name_span(sentence, start, end)
            # The question's own names are not its answer; a name sharing a word with it may be.
            words = [re.sub(r"['’]s$", "", word.lower()) for word in sentence[start:end].split()]
            if start == end or all(word in asked_words for word in words):
                continue
        else:
            start, end = stripped_span(sentence, start, end)
            text = sentence[start:end]
            if text.lower() in asked or (kind == "number" and YEAR.fullmatch(text)):
                continue
        # Offsets into the sentence as written: a name spaced twice or with a no-break space
        # is quoted as it stands.
        found.append(Span(start, end, sentence[start:end]))
    distinct = {" ".join(span.text.split()) for span in found}
    return found[0] if len(distinct) == 1 else None


def name_span(sentence: str, start: int, end: int) -> tuple[int, int]:
    """`sentence[start:end]` without capitalised non-names at either end ("The", "Monday"), a
    possessive or trailing punctuation."""
    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", sentence[start:end])]
    while words and sentence[slice(*words[0])].strip(".,") in NOT_NAMES:
        words.pop(0)
    while words and (
        sentence[slice(*words[-1])].strip(".,") in NOT_NAMES
        or sentence[slice(*words[-1])] in {"of", "the", "&", "and"}
    ):
        words.pop()
    if not words:
        return start, start
    start, end = words[0][0], words[-1][1]
    possessive = re.search(r"['’]s$", sentence[start:end])
    if possessive:
        end = start + possessive.start()
    while end > start and sentence[end - 1] in ".,":
        end -= 1
    return start, end


def stripped_span(sentence: str, start: int, end: int) -> tuple[int, int]:
    """`sentence[start:end]` without white space at either end."""
    while start < end and sentence[start].isspace():
        start += 1
    while end > start and sentence[end - 1].isspace():
        end -= 1
    return start, end
