"""qa for LangChain: news passages as a retriever, and cited answers as a Runnable.

    from qa import NewsQAChain, NewsRetriever

Only this module imports LangChain's types; the rest of qa never imports it.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, PrivateAttr

from qa.settings import Settings, get_settings
from qa.types import Answer, Passage
from qa.workspace import Workspace


class CollectionOptions(BaseModel):
    """The collection to use and how; options left unset come from `settings` if given, else
    from the `QA_*` environment variables and defaults, as for the `qa` command."""

    OPTIONS: ClassVar[tuple[str, ...]] = ("home", "collection", "chroma_url", "k", "retrieval")

    settings: Settings | None = None
    home: Path | None = None
    collection: str | None = None
    chroma_url: str | None = None
    k: int | None = None
    retrieval: str | None = None

    _workspace: Workspace | None = PrivateAttr(default=None)

    def qa_settings(self) -> Settings:
        """The settings in force: `settings` (or the environment's) with the options on top."""
        given = {name: getattr(self, name) for name in self.OPTIONS}
        given = {name: value for name, value in given.items() if value is not None}
        if self.settings is None:
            return get_settings(**given)
        return self.settings.with_flags(**given)

    @contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """The workspace of these settings, made at the first call and lent to one call at a
        time (`batch` calls from several threads)."""
        if self._workspace is None:
            self._workspace = Workspace(self.qa_settings())
        with self._workspace.lent() as workspace:
            yield workspace


class NewsRetriever(CollectionOptions, BaseRetriever):
    """The passages of the ingested articles that best match a query, as Documents.

    Each document's metadata holds `article_id`, `title`, `date`, `source`, `url`, `chunk_id`,
    `score` (cosine similarity), `rank`, `also_in` (other articles with the same story) and
    `start`/`end`: `article.text[start:end] == document.page_content`.
    """

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        with self.workspace() as workspace:
            passages = workspace.search(query)
        return [passage_document(passage) for passage in passages]


class NewsQAChain(CollectionOptions, RunnableSerializable[str, Answer]):
    """A question in, qa's `Answer` out: every `[n]` in its text is a checked citation.

    `stream` yields the answer's text as it is written (unchecked), then the checked `Answer`.
    `llm` is any `--llm` value: extractive, openai, local or a LangChain `provider:model`.
    """

    OPTIONS: ClassVar[tuple[str, ...]] = (*CollectionOptions.OPTIONS, "llm", "model", "base_url")

    llm: str | None = None
    model: str | None = None
    base_url: str | None = None

    def invoke(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        return self._call_with_config(self.ask, input, config)

    def stream(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[str | Answer]:
        """The answer's text piece by piece as the model writes it, then the checked `Answer`."""
        yield from self._transform_stream_with_config(iter([input]), self.ask_streaming, config)

    async def astream(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str | Answer]:
        pieces = self.stream(input, config, **kwargs)
        # Neither a piece nor an answer is ever None, so None can say the stream is over.
        while (piece := await run_in_executor(config, next, pieces, None)) is not None:
            yield piece

    def ask(self, question: str) -> Answer:
        with self.workspace() as workspace:
            return workspace.ask(question, stream=False).answer()

    def ask_streaming(self, questions: Iterator[str]) -> Iterator[str | Answer]:
        question = "".join(questions)
        # The workspace stays lent to this stream until its answer is read.
        with self.workspace() as workspace:
            answering = workspace.ask(question)
            yield from answering
            yield answering.answer()


def passage_document(passage: Passage) -> Document:
    return Document(
        id=passage.chunk_id,
        page_content=passage.text,
        metadata={
            "article_id": passage.article_id,
            "title": passage.title,
            "date": passage.date,
            "source": passage.source,
            "url": passage.url,
            "chunk_id": passage.chunk_id,
            "score": passage.score,
            "rank": passage.rank,
            "start": passage.start,
            "end": passage.end,
            "also_in": [copy.article_id for copy in passage.also_in],
        },
    )
