"""The records every part of qa passes along: passages, citations, answers, and the answerer
interface. This module imports nothing of qa, so any module can use them without a cycle."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Copy:
    """Another article that carries the same passage."""

    article_id: str
    title: str
    date: str | None
    url: str | None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it sits in its article; `rank` starts at 1.

    `score` is the cosine similarity of the chunk to the question.
    """

    rank: int
    chunk_id: str
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    start: int
    end: int
    text: str
    score: float
    also_in: tuple[Copy, ...] = ()


@dataclass(frozen=True)
class Citation:
    """Marker `[marker]` quotes `article.text[start:end]` from one retrieved passage."""

    marker: int
    passage: Passage
    quote: str
    start: int
    end: int

    @property
    def article_id(self) -> str:
        return self.passage.article_id


TokenCallback = Callable[[str], None]


@dataclass(frozen=True)
class Answer:
    """An answer whose every `[n]` marker is one of `citations`."""

    question: str
    text: str
    citations: list[Citation]
    passages: list[Passage]
    abstained: bool
    answerer: str
    model: str | None = None
    unsupported: bool = False
    dropped_markers: list[int] = field(default_factory=list)
    searched: str | None = None
    # The name, number or date asked for, when one sentence holds exactly one: `text` is then
    # that span with its marker, and the citation quotes the whole sentence.
    short_answer: str | None = None


class Answerer(Protocol):
    """Turns a question and its passages into a cited answer.

    `complete` is the model's reply to a system and a user message, for rewriting follow-up
    questions; None for an answerer that only quotes. `parameters` are the constants that
    change its answers (recorded with every eval report); None when there are none of its own.
    """

    name: str
    model: str | None
    complete: Callable[[str, str], str] | None
    parameters: dict[str, Any] | None

    def answer(
        self,
        question: str,
        passages: list[Passage],
        *,
        as_of: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Answer: ...
