"""Follow-up questions made standalone by rules, for when there is no language model: which
words point back into the conversation, and what the last turns named for them."""

import re
from dataclasses import dataclass

from qa import calendar_words
from qa.citations import strip_markers
from qa.types import Turn
from qa.words import STOPWORDS

PERSON_PRONOUNS = {"he", "she", "him", "his", "her", "hers"}
GROUP_PRONOUNS = {"they", "them", "their", "theirs"}
THING_PRONOUNS = {"it", "its"}
POSSESSIVES = {"his", "hers", "its", "their", "theirs"}
# Object pronouns refer outside the question: "What did Tillerson ask him?"
NEVER_BOUND = {"him", "them"}
BE_VERBS = {"is", "was", "are", "were", "be", "been", "isn't", "wasn't", "aren't", "weren't"}
# "Is it true that…", "Is it known…": `it` points at nothing.
EXPLETIVE_NEXT = {"true", "possible", "likely", "clear", "known", "unclear", "reported", "said"}
MOTION_VERBS = re.compile(
    r"^(go|goes|going|gone|went|travel\w*|fl(y|ies|ew|own|ying)|come|comes|came|coming|"
    r"return\w*|head\w*|move\w*|send|sends|sent|sending|get|gets|got|bring\w*|brought)$"
)
ELLIPTICAL_START = re.compile(
    r"^\s*(and|but|also|so|what about|how about|what else|anything else)\b", re.I
)
MONTHS = [month.lower() for month in calendar_words.MONTHS]
WEEKDAYS = [day.lower() for day in calendar_words.WEEKDAYS]
NOT_NAME_WORDS = (
    STOPWORDS
    | set(MONTHS)
    | set(WEEKDAYS)
    | {"whose", "last", "next", "name", "list", "give", "explain", "describe", "did", "does"}
)
# Words that make a capitalised run a title, an institution or a place rather than a person.
NOT_PERSON_WORDS = {
    "president", "minister", "secretary", "undersecretary", "deputy", "foreign", "state",
    "states", "department", "house", "ministry", "office", "committee", "council", "party",
    "union", "nations", "press", "war", "court", "agency", "bank", "street", "government",
    "congress", "senate", "assembly", "army", "navy", "force", "forces", "news", "times",
    "post", "university", "institute", "company", "group", "kingdom", "republic", "federation",
    "sea", "river", "island", "islands", "city", "county", "province", "region", "new", "north",
    "south", "east", "west", "united", "general", "ambassador", "senator", "governor", "prime",
    "special", "representative", "envoy", "chief", "former", "vice", "mr", "mrs", "ms", "dr",
}  # fmt: skip
NAME_WORD = r"(?:[A-Z][a-z]+(?:['’-][A-Za-z]+)*|(?:[A-Z]\.){2,}|[A-Z]{2,}\b)"
NAME_RUN = re.compile(rf"\b{NAME_WORD}(?:[ \t]+{NAME_WORD})*")
TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")
AUXILIARY = re.compile(
    r"^\W*(?:\w+\W+){0,3}?(?:did|does|do|will|would|has|have|had|is|was|are|were|can|could|"
    r"should|might|may)\s+(?:the\s+)?",
    re.I,
)
WHO_IS = re.compile(r"^\s*who\s+(is|was|are|were)\s+(?P<x>.+?)[\s?.!]*$", re.I)
WHO = re.compile(r"^\s*who(m|se)?\b", re.I)
WHAT_IS = re.compile(r"^\s*what\s+(?:is|was)\s+(?P<x>(?:the|a|an)\s.+?)[\s?.!]*$", re.I)
PLACE_BEFORE = re.compile(
    r"\b(?:in|to|at|from|into|near|outside|inside|toward|towards|across|around)\s+(the\s+)?$"
)
ATTRIBUTION_AFTER = re.compile(r"^,?\s+(said|says|told|tells|added|adds)\b")
MONTH = "|".join(month.title() for month in MONTHS)
WEEKDAY = "|".join(day.title() for day in WEEKDAYS)
TIME_PHRASE = re.compile(
    rf"\b(?:(?:last|next|this|that)\s+(?:week|weekend|month|year|{WEEKDAY}|{MONTH})"
    rf"|(?:in|since|by|until)\s+(?:{MONTH})(?:\s+\d{{1,2}})?(?:,?\s+\d{{4}})?"
    rf"|(?:in|since|by|until)\s+\d{{4}}|on\s+(?:{WEEKDAY})|\d{{4}}-\d{{2}}-\d{{2}})\b",
    re.I,
)


@dataclass
class Referents:
    """What he/she, they, it, there and then point at, from the most recent turns."""

    person: str | None = None
    group: str | None = None
    thing: str | None = None
    place: str | None = None
    time: str | None = None

    def fill_from(self, other: "Referents") -> None:
        for name in ("person", "group", "thing", "place", "time"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))


def needs_context(question: str) -> bool:
    """Whether the question points back into the conversation (pronouns, ellipsis)."""
    return bool(references(question)) or is_elliptical(question)


def condense_with_rules(turns: list[Turn], question: str) -> str:
    """Resolve pronouns to what the last turns named; carry the last question's words otherwise.

    Only words the conversation used are put in: after `Who is the U.S. envoy…?` whose answer
    names nobody, `he` becomes `the U.S. envoy…`, not a guess at his name.
    """
    referents = Referents()
    for turn in reversed(turns):
        referents.fill_from(turn_referents(turn))
    rewritten, unresolved, resolved = substitute(question, referents)
    if unresolved or (is_elliptical(question) and not resolved):
        carried = carried_words(turns[-1].standalone, rewritten)
        if carried:
            rewritten = f"{rewritten} ({carried})"
    return rewritten


def references(question: str) -> list[re.Match[str]]:
    """Pronouns in `question` that refer to something outside it."""
    tokens = list(TOKEN.finditer(question))
    return [token for index, token in enumerate(tokens) if points_outside(question, tokens, index)]


def points_outside(question: str, tokens: list[re.Match[str]], index: int) -> bool:
    """Whether token `index` is a pronoun whose referent the question itself does not name."""
    word = tokens[index].group().lower()
    before = tokens[index - 1].group().lower() if index else ""
    after = tokens[index + 1].group().lower() if index + 1 < len(tokens) else ""
    earlier = question[: tokens[index].start()]
    if word == "there":
        # "Is there…", "there was…" say that something exists; they point nowhere.
        return not (before in BE_VERBS or after in BE_VERBS or places_in(earlier))
    if word == "then":
        return not TIME_PHRASE.search(earlier)
    if word not in PERSON_PRONOUNS | GROUP_PRONOUNS | THING_PRONOUNS:
        return False
    if word == "it" and after in EXPLETIVE_NEXT:
        return False
    return word in NEVER_BOUND or not names_in(earlier)


def is_elliptical(question: str) -> bool:
    """`And Syria?`, `What about Iran?`, `Why?`: a fragment that leans on the last turn."""
    if ELLIPTICAL_START.match(question):
        return True
    return len(TOKEN.findall(question)) <= 2 and not names_in(question)


def substitute(question: str, referents: Referents) -> tuple[str, list[str], list[str]]:
    """The question with referring words replaced; also the words left and the words replaced."""
    pieces, unresolved, resolved = [], [], []
    last = 0
    for token in references(question):
        replacement = replacement_for(token, question, referents)
        pieces.append(question[last : token.start()])
        if replacement is None:
            unresolved.append(token.group())
            pieces.append(token.group())
        else:
            resolved.append(token.group())
            pieces.append(capitalised(replacement) if token.start() == 0 else replacement)
        last = token.end()
    pieces.append(question[last:])
    return "".join(pieces), unresolved, resolved


def replacement_for(token: re.Match[str], question: str, referents: Referents) -> str | None:
    word = token.group().lower()
    if word == "there":
        if referents.place is None:
            return None
        before = TOKEN.findall(question[: token.start()])
        moving = bool(before) and bool(MOTION_VERBS.match(before[-1].lower()))
        return f"{'to' if moving else 'in'} {referents.place}"
    if word == "then":
        return referents.time
    if word in PERSON_PRONOUNS:
        referent = referents.person
    elif word in GROUP_PRONOUNS:
        referent = referents.group
    else:
        referent = referents.thing
    if referent is None:
        return None
    if word in POSSESSIVES or (word == "her" and is_possessive_her(question, token.end())):
        return possessive(referent)
    return referent


def turn_referents(turn: Turn) -> Referents:
    """What one turn's standalone question and answer name."""
    question = turn.standalone
    answer = "" if turn.answer.abstained else strip_markers(turn.answer.text)
    found = Referents()
    who_is = WHO_IS.match(question)
    subject = subject_of(question)
    if who_is:
        target = who_is.group("x")
        named = is_name(target) or not person_named_in(answer, question)
        referent = target if named else person_named_in(answer, question)
        if who_is.group(1).lower() in ("are", "were"):
            found.group = referent
        else:
            found.person = referent
    elif WHO.match(question):
        found.person = doer_named_in(answer, question) or person_named_in(answer, question)
    elif subject and " and " in subject:
        found.group = subject
    elif subject and subject[0].isupper():
        found.person = subject
    if found.group is None:
        found.group = conjoined_names(question) or conjoined_names(answer)
    what_is = WHAT_IS.match(question)
    phrases = noun_phrases(question)
    if what_is:
        found.thing = what_is.group("x")
    elif phrases:
        found.thing = phrases[-1]
    places = places_in(question)
    found.place = places[-1] if places else next(iter(places_in(answer)), None)
    times = TIME_PHRASE.findall(question) or TIME_PHRASE.findall(answer)
    found.time = times[0] if times else None
    return found


def names_in(text: str) -> list[tuple[int, int]]:
    """Spans of capitalised names (`Kurt Volker`, `U.S.`, `NATO`) in `text`."""
    spans = []
    for match in NAME_RUN.finditer(text):
        words = list(re.finditer(r"\S+", match.group()))
        while words and re.sub(r"['’]s$", "", words[0].group().lower()) in NOT_NAME_WORDS:
            words.pop(0)
        while words and words[-1].group().lower() in NOT_NAME_WORDS:
            words.pop()
        if words:
            end = match.start() + words[-1].end()
            if text[end - 2 : end] in ("'s", "’s"):
                end -= 2
            spans.append((match.start() + words[0].start(), end))
    return spans


def is_name(phrase: str) -> bool:
    return [(0, len(phrase))] == names_in(phrase)


def subject_of(question: str) -> str | None:
    """The name after the auxiliary: `When will Kurt Volker go…` -> `Kurt Volker`."""
    match = AUXILIARY.match(question)
    if not match:
        return None
    spans = [span for span in names_in(question) if span[0] == match.end()]
    if not spans:
        return None
    start, end = spans[0]
    subject = question[start:end]
    more = re.match(r",?\s+and\s+", question[end:])
    following = [span for span in names_in(question) if more and span[0] == end + more.end()]
    if following:
        subject = f"{subject} and {question[following[0][0] : following[0][1]]}"
    article = question[match.start() : start].split()[-1:]
    return f"the {subject}" if article == ["the"] else subject


def person_named_in(answer: str, question: str) -> str | None:
    """The first person the answer names who is not in the question and is not a speaker."""
    asked = question.lower()
    for start, end in names_in(answer):
        if ATTRIBUTION_AFTER.match(answer[end:]):
            continue
        person = person_part(answer[start:end])
        if person and person.lower() not in asked:
            return person
    return None


def doer_named_in(answer: str, question: str) -> str | None:
    """For `Who signed X?`: the name right before the question's verb (`Trump signed`)."""
    verb = re.match(r"^\s*who\s+(\w+)", question, re.I)
    if not verb or verb.group(1).lower() in STOPWORDS:
        return None
    for start, end in names_in(answer):
        following = TOKEN.match(answer[end:].lstrip())
        if following and following.group().lower()[:4] == verb.group(1).lower()[:4]:
            name = answer[start:end]
            return person_part(name) or name.split()[-1]
    return None


def person_part(name: str) -> str | None:
    """`Russian Foreign Minister Sergey Lavrov` -> `Sergey Lavrov`; None if it is no person."""
    kept: list[str] = []
    for word in reversed(name.split()):
        if not re.fullmatch(r"[A-Z][a-z]+(?:['’-][A-Za-z]+)*", word):
            break
        if word.lower() in NOT_PERSON_WORDS:
            break
        kept.insert(0, word)
    return " ".join(kept) if len(kept) >= 2 else None


def conjoined_names(text: str) -> str | None:
    """`Lavrov and Tillerson`, `Russia, Iran and Turkey`."""
    spans = names_in(text)
    for index, (start, end) in enumerate(spans):
        group_end = end
        for next_start, next_end in spans[index + 1 :]:
            joiner = text[group_end:next_start]
            if re.fullmatch(r",\s+", joiner):
                group_end = next_end
            elif re.fullmatch(r",?\s+and\s+", joiner):
                return text[start:next_end]
            else:
                break
    return None


def places_in(text: str) -> list[str]:
    """Names after `in`, `to`, `at`…: `to Moscow`, `in the Philippines`."""
    places = []
    for start, end in names_in(text):
        before = PLACE_BEFORE.search(text[:start])
        if before:
            places.append(("the " if before.group(1) else "") + text[start:end])
    return places


def noun_phrases(text: str) -> list[str]:
    """`the bill` in `When was the bill passed?`: `the` and the nouns after it, roughly."""
    phrases = []
    for match in re.finditer(r"\bthe\s+", text, re.I):
        words = []
        for word in re.findall(r"[\w.'’-]+|\S", text[match.end() :])[:4]:
            if word.lower() in STOPWORDS or re.search(r"\w(ed|ing)$|^\W", word):
                break
            words.append(word.rstrip("."))
        if words:
            phrases.append(" ".join(["the", *words]))
    return phrases


def carried_words(previous: str, question: str) -> str:
    """The previous question's content words that the new one lacks, in their order."""
    present = {word.lower() for word in TOKEN.findall(question)}
    carried: list[str] = []
    for word in re.findall(r"[A-Za-z0-9]+(?:[.'’-][A-Za-z0-9]+)*\.?", previous):
        bare = word.rstrip(".") if not re.fullmatch(r"(?:[A-Z]\.){2,}", word) else word
        lowered = bare.lower()
        if lowered in STOPWORDS or lowered in present or bare in carried:
            continue
        carried.append(bare)
    return " ".join(carried)


def is_possessive_her(question: str, end: int) -> bool:
    following = TOKEN.match(question[end:].lstrip())
    return bool(following) and following.group().lower() not in STOPWORDS


def possessive(referent: str) -> str:
    return f"{referent}'s"


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
