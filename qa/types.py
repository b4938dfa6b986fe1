"""The records every part of qa passes along: passages, citations, answers, the answer stream
and the answerer interface. This module imports nothing of qa, so any module can use them
without a cycle."""

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Copy:
    """Another article that carries the same passage."""

    article_id: str
    title: str
    date: str | None
    url: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "date": self.date,
            "url": self.url,
        }


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

    @property
    def article_ids(self) -> tuple[str, ...]:
        """Its own article, then those of the copies folded into it."""
        return (self.article_id, *(copy.article_id for copy in self.also_in))

    def to_json(self) -> dict[str, Any]:
        """A passage as `qa ask --json` and the MCP `search` tool give it."""
        return {
            "rank": self.rank,
            "article_id": self.article_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "date": self.date,
            "score": self.score,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "also_in": [copy.to_json() for copy in self.also_in],
        }


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

    def to_json(self) -> dict[str, Any]:
        """A citation as `qa ask --json`, eval reports and the MCP `ask` tool give it."""
        passage = self.passage
        return {
            "marker": self.marker,
            "article_id": passage.article_id,
            "chunk_id": passage.chunk_id,
            "title": passage.title,
            "date": passage.date,
            "source": passage.source,
            "url": passage.url,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
            "also_in": [copy.to_json() for copy in passage.also_in],
        }


# (done, total): how far a long job has got.
ProgressCallback = Callable[[int, int], None]
# Chat messages as OpenAI-compatible servers take them: role and content.
Messages = list[dict[str, str]]


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

    def to_json(self) -> dict[str, Any]:
        """The `qa ask --json` object."""
        return {
            "question": self.question,
            "searched": self.searched or self.question,
            "answer": self.text,
            "short_answer": self.short_answer,
            "abstained": self.abstained,
            "unsupported": self.unsupported,
            "answerer": self.answerer,
            "model": self.model,
            "dropped_markers": self.dropped_markers,
            "citations": [citation.to_json() for citation in self.citations],
            "passages": [passage.to_json() for passage in self.passages],
        }


class AnswerStream:
    """An answer as it is written: iterate for its text piece by piece, then `answer()` for the
    checked `Answer`.

    The pieces are the draft as the answerer writes it, secrets already masked; the checked
    answer's text may differ (markers renumbered or dropped). Nothing runs until the stream is
    read; `answer()` reads whatever is left first. Iterating a finished stream gives its pieces
    again.
    """

    def __init__(self, writing: Generator[str, None, Answer]) -> None:
        self._writing = writing
        self._pieces: list[str] = []
        self._answer: Answer | None = None

    @classmethod
    def of(cls, answer: Answer) -> "AnswerStream":
        """The stream of an answer known whole: its text, in one piece."""

        def whole() -> Generator[str, None, Answer]:
            yield answer.text
            return answer

        return cls(whole())

    def __iter__(self) -> Iterator[str]:
        if self._answer is not None:
            yield from self._pieces
            return
        while True:
            try:
                piece = next(self._writing)
            except StopIteration as finished:
                self._answer = finished.value
                return
            self._pieces.append(piece)
            yield piece

    def answer(self) -> Answer:
        """The checked answer, once the rest of the text is read."""
        for _ in self:
            pass
        if self._answer is None:
            # Only a stream whose writing failed, and was read again, ends without one.
            raise RuntimeError("the answer stream failed before its answer")
        return self._answer

    def text(self) -> str:
        """The text streamed so far."""
        return "".join(self._pieces)


class Answerer(Protocol):
    """Turns a question and its passages into a cited answer, as a stream.

    `answer` with `stream=False` may wait for the whole reply and give it in one piece (one
    request instead of a stream, for callers that only want the `Answer`). `complete` is the
    model's reply to a system and a user message, for rewriting follow-up questions; None for
    an answerer that only quotes. `parameters` are the constants that change its answers
    (recorded with every eval report); None when there are none of its own.
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
        stream: bool = True,
    ) -> AnswerStream: ...


@dataclass(frozen=True)
class Turn:
    """One question as typed, the standalone question that was searched, and its answer."""

    question: str
    standalone: str
    answer: Answer
