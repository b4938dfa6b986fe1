"""Find the passages most related to a question."""

from dataclasses import dataclass

from qa.embeddings import Embedder
from qa.store import Store


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it sits in its article; `rank` starts at 1."""

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


def retrieve(
    question: str,
    store: Store,
    embedder: Embedder,
    k: int,
    as_of: str | None = None,
    since: str | None = None,
) -> list[Passage]:
    """The `k` passages closest in meaning to `question`, best first."""
    store.check_embedding_model(embedder.name)
    hits = store.query(embedder.embed_query(question), k, as_of=as_of, since=since)
    return [
        Passage(
            rank=rank,
            chunk_id=hit.chunk_id,
            article_id=hit.metadata["article_id"],
            title=hit.metadata.get("title", hit.metadata["article_id"]),
            date=hit.metadata.get("date"),
            source=hit.metadata.get("source"),
            url=hit.metadata.get("url"),
            start=int(hit.metadata["start"]),
            end=int(hit.metadata["end"]),
            text=hit.text,
            # Cosine distance is 1 - similarity; report the similarity.
            score=round(1.0 - hit.distance, 4),
        )
        for rank, hit in enumerate(hits, start=1)
    ]
