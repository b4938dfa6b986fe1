"""Answer a question from retrieved passages: one interface, several answerers."""

from collections.abc import Generator
from dataclasses import dataclass

from qa.answerers import build_answerer
from qa.embeddings import Embedder
from qa.errors import InputError
from qa.retrieval import Retriever
from qa.settings import Settings
from qa.store import Store
from qa.types import Answer, Answerer, AnswerStream, Passage


@dataclass
class Assistant:
    """A retriever and an answerer opened once, for one question or many."""

    settings: Settings
    retriever: Retriever
    answerer: Answerer

    @classmethod
    def open(cls, settings: Settings, retriever: Retriever | None = None) -> "Assistant":
        retriever = retriever or Retriever.open(settings)
        return cls(settings, retriever, build_answerer(settings, retriever.embedder))

    @property
    def store(self) -> Store:
        return self.retriever.store

    @property
    def embedder(self) -> Embedder:
        return self.retriever.embedder

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
        since: str | None = None,
        search: str | None = None,
        stream: bool = True,
    ) -> AnswerStream:
        """Retrieve passages for `question` (or for `search`, when a chat gives the question
        more words to search with) and answer `question` from them alone.

        Nothing is retrieved until the stream is read. `stream=False` asks the model for its
        whole reply at once, for callers that want only `answer()`.
        """
        if not question.strip():
            raise InputError("The question is empty.", 'Example: qa ask "Who is Kurt Volker?"')
        return AnswerStream(self._answer(question, k, as_of, since, search, stream))

    def _answer(
        self,
        question: str,
        k: int | None,
        as_of: str | None,
        since: str | None,
        search: str | None,
        stream: bool,
    ) -> Generator[str, None, Answer]:
        passages = self.retrieve(search or question, k, as_of, since)
        answering = self.answerer.answer(question, passages, as_of=as_of, stream=stream)
        yield from answering
        return answering.answer()
