"""Scores for one answer against a test question, and the averages eval reports."""

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

from qa.sentences import split_sentences

# Typographic quotes and dashes are punctuation too in news text.
PUNCTUATION = frozenset(string.punctuation) | frozenset("‘’“”—–…")
ARTICLES = re.compile(r"\b(?:a|an|the)\b")
# Shorter evidence sentences ("He agreed.") match too many passages to tell relevance.
MIN_EVIDENCE_CHARS = 20

# What happened to one question: CRAG-style truthfulness scores a wrong answer below an
# honest abstention. On an unanswerable question abstaining is the right answer.
RIGHT, ABSTAINED, WRONG = "right", "abstained", "wrong"
TRUTHFULNESS = {RIGHT: 1, ABSTAINED: 0, WRONG: -1}


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(char for char in text.lower() if char not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def contains_answer(text: str, golds: Iterable[str]) -> bool:
    """Whether any gold answer appears in `text` as whole words, after normalisation.

    Punctuation separates words here, so "Obama" is found in "Obama's".
    """
    padded = f" {spaced_words(text)} "
    return any(gold and f" {gold} " in padded for gold in map(spaced_words, golds))


def spaced_words(text: str) -> str:
    """Like `normalize_answer`, but punctuation becomes a space instead of vanishing."""
    text = "".join(" " if char in PUNCTUATION else char for char in text.lower())
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD exact match against the best gold; with no golds, right only if nothing is said."""
    if not golds:
        return float(not normalize_answer(prediction))
    return max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 against the best gold; with no golds, 1 only if nothing is said."""
    if not golds:
        return float(not normalize_answer(prediction))
    return max(
        _f1(normalize_answer(prediction).split(), normalize_answer(g).split()) for g in golds
    )


def outcome(answerable: bool, abstained: bool, holds_answer: bool) -> str:
    """`right`, `abstained` or `wrong`; abstaining is right when the articles do not say."""
    if not answerable:
        return RIGHT if abstained else WRONG
    if abstained:
        return ABSTAINED
    return RIGHT if holds_answer else WRONG


def truthfulness(result: str) -> int:
    """+1 right, 0 abstained, -1 wrong."""
    return TRUTHFULNESS[result]


def credited_article(article_ids: Sequence[str], gold: Sequence[str]) -> str:
    """The article a passage counts for: the first of its ids that is gold, else the first.

    `article_ids` is the passage's own article, then the articles whose copies of the same
    story retrieval folded into it (`also_in`): the passage's text is in each of them.
    """
    return next((article_id for article_id in article_ids if article_id in gold), article_ids[0])


def first_relevant_rank(
    passages: Sequence[tuple[str, str]], evidence: Sequence[str], article_ids: Sequence[str]
) -> int | None:
    """Rank (from 1) of the first `(article_id, text)` passage holding the evidence.

    Without evidence spans, a passage of one of `article_ids` counts; None if none is relevant.
    """
    needles = evidence_sentences(evidence)
    for rank, (article_id, text) in enumerate(passages, start=1):
        if needles:
            normalized = spaced_words(text)
            if any(needle in normalized for needle in needles):
                return rank
        elif article_id in article_ids:
            return rank
    return None


def evidence_sentences(evidence: Sequence[str]) -> list[str]:
    """Normalised evidence sentences long enough to identify a passage.

    Evidence may be a whole paragraph longer than a passage, so a passage holding any
    one of its sentences counts as holding the evidence.
    """
    needles = []
    for span in evidence:
        whole = spaced_words(span)
        pieces = [spaced_words(s.text) for s in split_sentences(span)]
        long_enough = [piece for piece in pieces if len(piece) >= MIN_EVIDENCE_CHARS]
        needles.extend(long_enough or ([whole] if whole else []))
    return needles


def abstention_scores(results: Iterable[tuple[bool, bool]]) -> dict[str, float | None]:
    """Precision, recall and F1 of abstaining, from `(answerable, abstained)` pairs.

    An abstention is a positive; it is a true one when the question is unanswerable.
    A score is None when it is undefined (no abstentions, no unanswerable questions).
    """
    counts = Counter((answerable, abstained) for answerable, abstained in results)
    true_pos, false_pos = counts[(False, True)], counts[(True, True)]
    false_neg = counts[(False, False)]
    precision = _ratio(true_pos, true_pos + false_pos)
    recall = _ratio(true_pos, true_pos + false_neg)
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def quote_is_verbatim(
    quote: str, start: int, end: int, passage_text: str, passage_start: int
) -> bool:
    """Whether `quote` is exactly the passage text between article offsets `start` and `end`."""
    offset = start - passage_start
    return (
        bool(quote)
        and 0 <= offset <= end - passage_start <= len(passage_text)
        and (passage_text[offset : end - passage_start] == quote)
    )


def picked_choice(answer: str, choices: Sequence[str]) -> str | None:
    """The one choice the answer names (whole words, normalised); None if it names 0 or 2+."""
    named = [choice for choice in choices if contains_answer(answer, [choice])]
    return named[0] if len(named) == 1 else None


def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def percentile(values: Iterable[float], percent: float) -> float | None:
    """Nearest-rank percentile: the smallest value at or above `percent`% of the values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _f1(predicted: list[str], gold: list[str]) -> float:
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)
