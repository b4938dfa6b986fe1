"""Answer a question from retrieved passages: one interface, several answerers."""

from dataclasses import dataclass

from qa.answerers import build_answerer
from qa.embeddings import Embedder
from qa.errors import InputError
from qa.retrieval import Retriever
from qa.settings import Settings
from qa.store import Store
from qa.types import Answer, Answerer, Passage, TokenCallback


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
        answerer = build_answerer(settings, retriever.embedder)
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
        search: str | None = None,
    ) -> Answer:
        """Retrieve passages for `question` (or for `search`, when a chat gives the question
        more words to search with) and answer `question` from them alone."""
        if not question.strip():
            raise InputError("The question is empty.", 'Example: qa ask "Who is Kurt Volker?"')
        passages = self.retrieve(search or question, k, as_of, since)
        return self.answerer.answer(question, passages, as_of=as_of, on_token=on_token)
