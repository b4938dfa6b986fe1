"""qa opened from one settings object: the door the CLI, chat, eval, MCP and LangChain use.

Each part (store, embedder, keyword search, answerer) is opened on first use and kept, so a
command pays only for what it touches, and a server answering many requests opens each once.
"""

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from qa.settings import Settings

if TYPE_CHECKING:
    from qa.answering import Assistant
    from qa.embeddings import Embedder
    from qa.ingestion import IngestReport
    from qa.retrieval import Retriever
    from qa.store import ArticleRecord, Store
    from qa.types import AnswerStream, Passage, ProgressCallback


class Workspace:
    """One collection of articles and the way it is searched and answered from."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._opening = threading.RLock()
        self._lending = threading.Lock()
        self._embedder: Embedder | None = None
        self._retriever: Retriever | None = None
        self._assistant: Assistant | None = None

    @contextmanager
    def lent(self) -> Iterator["Workspace"]:
        """This workspace for one caller at a time: a local model's process, the keyword index
        and an embedded Chroma are not for two threads at once (an MCP server's tool calls,
        LangChain's `batch`)."""
        with self._lending:
            yield self

    @property
    def embedder(self) -> "Embedder":
        with self._opening:
            if self._embedder is None:
                from qa.embeddings import get_embedder

                self._embedder = get_embedder(self.settings)
            return self._embedder

    @property
    def retriever(self) -> "Retriever":
        """Dense and keyword search over the collection, opened for reading on first use."""
        with self._opening:
            if self._retriever is None:
                from qa.retrieval import Retriever

                self._retriever = Retriever.open(self.settings, self._embedder)
                self._embedder = self._retriever.embedder
            return self._retriever

    @property
    def assistant(self) -> "Assistant":
        """The retriever and the answerer the settings name, opened on first use."""
        with self._opening:
            if self._assistant is None:
                from qa.answering import Assistant

                self._assistant = Assistant.open(self.settings, self.retriever)
            return self._assistant

    def store(self, create: bool = False) -> "Store":
        """The collection's store; with `create`, made on disk or on the server if missing."""
        if self._retriever is not None and not create:
            return self._retriever.store
        from qa.store import Store

        return Store.open(self.settings, create=create)

    def ingest(
        self,
        sources: Iterable[Path | str],
        progress: "ProgressCallback | None" = None,
        fetch_progress: "ProgressCallback | None" = None,
    ) -> "IngestReport":
        """Add the articles of `sources` (files, folders, page and feed URLs)."""
        from qa.ingestion import ingest
        from qa.web import FetchSettings

        settings = self.settings
        try:
            return ingest(
                sources,
                self.store(create=True),
                self.embedder,
                settings.chunking,
                progress,
                max_article_mb=settings.max_article_mb,
                fetching=FetchSettings.of(settings),
                fetch_progress=fetch_progress,
            )
        finally:
            self.forget_search()

    def search(
        self,
        question: str,
        k: int | None = None,
        as_of: str | None = None,
        since: str | None = None,
    ) -> list["Passage"]:
        """The passages that best match `question`, best first, one per story."""
        k = k or self.settings.k
        return self.retriever.retrieve(question, k, as_of=as_of, since=since)

    def ask(self, question: str, **options) -> "AnswerStream":
        """The answer to `question` from the articles alone, as a stream: iterate it for the
        text as it is written, then `answer()` for the checked answer (`Assistant.ask`)."""
        return self.assistant.ask(question, **options)

    def sources(self) -> list["ArticleRecord"]:
        """Every article on record."""
        return self.store().articles()

    def reset(self) -> int:
        """Delete every article and vector of the collection; how many articles there were."""
        store = self.store()
        try:
            with store.writing():
                return store.reset()
        finally:
            self.forget_search()

    def forget_search(self) -> None:
        """After a write, the next question opens the store again: a reader of an embedded
        store caches its vector index apart from the writer's client (qa.chroma_local)."""
        with self._opening:
            self._retriever = None
            self._assistant = None
