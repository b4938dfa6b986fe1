"""The journal's collection: which article versions each writer is writing now.

What goes in it, and when, is the write protocol's (qa.writer).
"""

from typing import Any

from qa.article_records import ARTICLE_VECTOR
from qa.chroma_gateway import ChromaGateway

JOURNAL_SUFFIX = "__journal"


class Journal:
    """One entry per writer at work, in a collection beside the chunks'."""

    def __init__(self, chroma: ChromaGateway, collection_name: str) -> None:
        self.chroma = chroma
        self.name = collection_name + JOURNAL_SUFFIX

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        """Every entry's id and metadata; none if no writer has written one yet."""
        journal = self.chroma.collection(self.name)
        if journal is None:
            return []
        with self.chroma.calls():
            found = journal.get(include=["metadatas"])
        return list(zip(found["ids"], found["metadatas"], strict=True))

    def put(self, entry_id: str, meta: dict[str, Any]) -> None:
        journal = self.chroma.get_or_create_collection(self.name)
        with self.chroma.calls():
            journal.upsert(ids=[entry_id], embeddings=[ARTICLE_VECTOR], metadatas=[meta])

    def delete(self, entry_id: str) -> None:
        journal = self.chroma.collection(self.name)
        if journal is not None:
            with self.chroma.calls():
                journal.delete(ids=[entry_id])
