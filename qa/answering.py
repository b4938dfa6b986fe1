"""Answer a question from retrieved passages: one interface, several answerers."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from qa.citations import Citation
from qa.embeddings import Embedder
from qa.errors import InputError
from qa.retrieval import Passage, Retriever
from qa.settings import Settings
from qa.store import Store

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
    """Turns a question and its passages into a cited answer."""

    name: str
    model: str | None

    def answer(
        self,
        question: str,
        passages: list[Passage],
        *,
        as_of: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Answer: ...


def get_answerer(settings: Settings, embedder: Embedder) -> Answerer:
    """The answerer the settings name (`auto`: OpenAI when configured, else extractive)."""
    from qa.providers import resolve_llm

    choice = resolve_llm(settings)
    if choice == "extractive":
        from qa.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer(embedder)
    from qa.generative import GenerativeAnswerer

    return GenerativeAnswerer.for_provider(choice, settings)


@dataclass
class Assistant:
    """Store, embedder and answerer opened once, for one question or many."""

    settings: Settings
    store: Store
    embedder: Embedder
    answerer: Answerer
    retriever: Retriever

    @classmethod
    def open(cls, settings: Settings) -> "Assistant":
        retriever = Retriever.open(settings)
        answerer = get_answerer(settings, retriever.embedder)
        return cls(settings, retriever.store, retriever.embedder, answerer, retriever)

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        as_of: str | None = None,
        since: str | None = None,
    ) -> list[Passage]:
        return self.retriever.retrieve(question, k or self.settings.k, as_of=as_of, since=since)

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        as_of: str | None = None,
        on_token: TokenCallback | None = None,
        since: str | None = None,
    ) -> Answer:
        """Retrieve passages for `question` and answer from them alone."""
        if not question.strip():
            raise InputError("The question is empty.", 'Example: qa ask "Who is Kurt Volker?"')
        passages = self.retrieve(question, k, as_of, since)
        return self.answerer.answer(question, passages, as_of=as_of, on_token=on_token)
