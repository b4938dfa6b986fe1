"""Answer by quoting the retrieved sentences that best answer the question; never invent text."""

import re
from dataclasses import dataclass, replace

from qa.calendar_words import MONTHS, WEEKDAYS, alternatives
from qa.citations import NO_ANSWER, citation_for_span
from qa.embeddings import Embedder
from qa.sentences import Span, split_sentences
from qa.short_answers import answer_kind, short_answer
from qa.types import Answer, AnswerStream, Citation, Passage
from qa.words import content_words

MAX_SENTENCES = 2
# Only this many sentences, those sharing most words with the question, are embedded:
# embedding every sentence of the passages cost several times the retrieval. With 8, accuracy
# and truthfulness on the dev halves of both benchmarks were those of embedding them all
# (bench/bench_extractive.py); with 6, a few squad2 answers got worse.
SHORTLIST = 8
# ... and only those within this much of the best one's word-and-type score: to overtake it, a
# sentence further behind would need an embedding similarity 0.36 higher (0.2 / 0.55), which
# no answer or close runner-up had on either dev half when every sentence was embedded. It
# spares a third of the embedding on squad2 and a tenth on RealTime QA.
SHORTLIST_GAP = 0.2
# Below this combined score no sentence is taken to answer the question. Chosen with
# `qa eval` on seeds/eval/seed.jsonl: up to here, raising it only turns wrong answers into
# abstentions; above it, plain answerable questions ("Where did Kurt Volker go last
# month?", 0.456) start to abstain too.
ABSTAIN_BELOW = 0.45
# A second sentence joins the answer only if it scores nearly as well as the best one.
SECOND_SENTENCE_MARGIN = 0.06
# A sentence's score: meaning (embedding similarity) and shared words count most; holding the
# kind of answer asked for and the passage's rank break ties.
SIMILARITY_WEIGHT = 0.55
OVERLAP_WEIGHT = 0.35
TYPE_WEIGHT = 0.08
RANK_WEIGHT = 0.02

NUMBER = re.compile(r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|"
                    r"dozen|hundred|thousand|million|billion)s?\b", re.IGNORECASE)  # fmt: skip
TIME = re.compile(
    rf"\b(?:\d{{4}}|{alternatives(WEEKDAYS)}|today|yesterday|tomorrow|week|month|year|"
    rf"{alternatives(MONTHS)}|last|next|ago|since|until)\b",
    re.IGNORECASE,
)
PROPER_NOUN = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    span: Span
    score: float


class ExtractiveAnswerer:
    """Picks whole sentences from the passages; abstains when none fits well enough."""

    name = "extractive"
    model: str | None = None
    # It quotes and never writes: there is no model to rewrite a follow-up question with.
    complete = None

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    @property
    def parameters(self) -> dict[str, float]:
        """The scoring constants in force, recorded with every eval report."""
        return {
            "abstain_below": ABSTAIN_BELOW,
            "second_sentence_margin": SECOND_SENTENCE_MARGIN,
            "max_sentences": MAX_SENTENCES,
            "similarity_weight": SIMILARITY_WEIGHT,
            "overlap_weight": OVERLAP_WEIGHT,
            "type_weight": TYPE_WEIGHT,
            "rank_weight": RANK_WEIGHT,
            "shortlist": SHORTLIST,
            "shortlist_gap": SHORTLIST_GAP,
        }

    def answer(
        self,
        question: str,
        passages: list[Passage],
        *,
        as_of: str | None = None,
        stream: bool = True,
    ) -> AnswerStream:
        """The answer in one piece: it is chosen whole, never written word by word."""
        return AnswerStream.of(self.quote(question, passages))

    def quote(self, question: str, passages: list[Passage]) -> Answer:
        """The sentences of `passages` that best answer `question`, or the refusal."""
        ranked = self.rank_sentences(question, passages)
        chosen = choose_sentences(ranked)
        # A short answer only when one sentence stands out: with a close runner-up, the span
        # of the first may answer less well than the second sentence does.
        span = None
        if len(chosen) == 1:
            span = short_answer(answer_kind(question), chosen[0].span.text, question)
        citations = [
            citation_for_span(marker, c.passage, c.span.start, c.span.end)
            for marker, c in enumerate(chosen, start=1)
        ]
        text = compose(citations) if citations else NO_ANSWER
        if span:
            text = f"{span.text} [1]"
        return Answer(
            question=question,
            text=text,
            citations=citations,
            passages=passages,
            abstained=not citations,
            answerer=self.name,
            short_answer=span.text if span else None,
        )

    def rank_sentences(self, question: str, passages: list[Passage]) -> list[Candidate]:
        """The sentences of the passages most likely to answer, best first."""
        question_words = content_words(question)
        wants = answer_kind(question)
        shortlist = sorted(
            (
                Candidate(
                    passage,
                    span,
                    score_sentence(
                        overlap=word_overlap(question_words, span.text),
                        type_match=matches_type(wants, span.text, question),
                        rank=passage.rank,
                    ),
                )
                for passage, span in unique_sentences(passages)
            ),
            key=lambda c: c.score,
            reverse=True,
        )[:SHORTLIST]
        if not shortlist:
            return []
        shortlist = [c for c in shortlist if c.score >= shortlist[0].score - SHORTLIST_GAP]
        query = self.embedder.embed_query(question)
        vectors = self.embedder.embed_documents([c.span.text for c in shortlist])
        candidates = [
            replace(
                candidate,
                score=candidate.score
                + SIMILARITY_WEIGHT * sum(a * b for a, b in zip(query, vector, strict=True)),
            )
            for candidate, vector in zip(shortlist, vectors, strict=True)
        ]
        return sorted(candidates, key=lambda c: c.score, reverse=True)


def score_sentence(overlap: float, type_match: bool, rank: int) -> float:
    """Shared words count most, then the expected kind of answer and rank; meaning is added
    later, for the shortlist alone."""
    return OVERLAP_WEIGHT * overlap + TYPE_WEIGHT * type_match + RANK_WEIGHT / rank


def choose_sentences(ranked: list[Candidate]) -> list[Candidate]:
    """The best sentence, plus close runners-up, in article order; none if the best is weak."""
    if not ranked or ranked[0].score < ABSTAIN_BELOW:
        return []
    best = ranked[0]
    chosen = [best]
    for candidate in ranked[1:]:
        if len(chosen) == MAX_SENTENCES or candidate.score < best.score - SECOND_SENTENCE_MARGIN:
            break
        chosen.append(candidate)
    return sorted(chosen, key=lambda c: (c.passage.article_id, c.span.start))


def compose(citations: list[Citation]) -> str:
    """The quoted sentences, each followed by its marker."""
    return " ".join(f"{citation.quote} [{citation.marker}]" for citation in citations)


def unique_sentences(passages: list[Passage]) -> list[tuple[Passage, Span]]:
    """Sentences of all passages; overlapping chunks repeat sentences, keep the first."""
    seen: set[tuple[str, int]] = set()
    spans = []
    for passage in passages:
        for span in split_sentences(passage.text, offset=passage.start):
            key = (passage.article_id, span.start)
            if key not in seen and len(span.text) > 15:
                seen.add(key)
                spans.append((passage, span))
    return spans


def word_overlap(question_words: set[str], sentence: str) -> float:
    if not question_words:
        return 0.0
    return len(question_words & content_words(sentence)) / len(question_words)


def matches_type(wants: str | None, sentence: str, question: str) -> bool:
    """Whether the sentence holds the kind of thing the question asks for (names of places
    and organisations are too common in news sentences to tell anything)."""
    if wants == "number":
        return bool(NUMBER.search(sentence))
    if wants == "time":
        return bool(TIME.search(sentence))
    if wants == "person":
        asked = set(question.split())
        return any(name not in asked for name in PROPER_NOUN.findall(sentence))
    return False
