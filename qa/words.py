"""Word-level text features shared by answer selection and quote matching."""

import re

WORD = re.compile(r"[A-Za-z0-9]+(?:[.'’-][A-Za-z0-9]+)*")
STOPWORDS = frozenset(
    """a about after again against all also am an and any are as at be because been before
    being between both but by can could did do does doing done during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me more
    most my no nor not now of off on once only or other our out over own said same say says she
    should so some such than that the their them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you
    your many much tell told according""".split()  # noqa: SIM905 - a word list reads best as prose
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (keeps `u.s.`-style and hyphenated tokens whole)."""
    return [token.lower().replace("’", "'") for token in WORD.findall(text)]


def content_words(text: str) -> set[str]:
    """Words that carry meaning: no stopwords, with a crude plural fold."""
    return {_fold(token) for token in words(text) if token not in STOPWORDS}


def _fold(token: str) -> str:
    if len(token) > 4 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token
