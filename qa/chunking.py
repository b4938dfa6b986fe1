"""Cut articles into overlapping chunks of whole sentences, keeping offsets."""

import hashlib
from dataclasses import dataclass

from qa.loading import Article
from qa.sentences import Span, split_sentences


@dataclass(frozen=True)
class ChunkSettings:
    size: int
    overlap: int

    def as_metadata(self) -> dict[str, int]:
        return {"chunk_size": self.size, "chunk_overlap": self.overlap}


@dataclass(frozen=True)
class Chunk:
    """A passage of an article: `text == article.text[start:end]`."""

    id: str
    article_id: str
    index: int
    start: int
    end: int
    text: str


def chunk_article(article: Article, settings: ChunkSettings) -> list[Chunk]:
    """Chunks of whole sentences up to `settings.size` chars, sharing about `overlap` chars."""
    pieces = _pieces(article.text, split_sentences(article.text), settings.size)
    windows: list[tuple[int, int]] = []
    first = 0
    while first < len(pieces):
        last = first
        while last + 1 < len(pieces) and pieces[last + 1][1] - pieces[first][0] <= settings.size:
            last += 1
        windows.append((pieces[first][0], pieces[last][1]))
        if last == len(pieces) - 1:
            break
        first = _next_first(pieces, first, last, settings.overlap)
    prefix = chunk_id_prefix(article, settings)
    return [
        Chunk(f"{prefix}:{index:04d}", article.id, index, start, end, article.text[start:end])
        for index, (start, end) in enumerate(windows)
    ]


def chunk_id_prefix(article: Article, settings: ChunkSettings) -> str:
    """Stable per article content and settings, so re-chunking gives the same ids."""
    digest = hashlib.sha256(f"{article.hash}:{settings.size}:{settings.overlap}".encode())
    return f"{article.id}:{digest.hexdigest()[:12]}"


def _next_first(pieces: list[tuple[int, int]], first: int, last: int, overlap: int) -> int:
    """Start the next chunk far enough back that at least `overlap` chars repeat.

    Never as far back as `first`, so every chunk moves forward.
    """
    start = last + 1
    while overlap > 0 and start - 1 > first:
        repeated = pieces[last][1] - pieces[start][0] if start <= last else 0
        if repeated >= overlap:
            break
        start -= 1
    return start


def _pieces(text: str, sentences: list[Span], size: int) -> list[tuple[int, int]]:
    """Sentence spans, with any sentence longer than `size` cut at white space."""
    pieces: list[tuple[int, int]] = []
    for sentence in sentences:
        start = sentence.start
        while sentence.end - start > size:
            cut = text.rfind(" ", start + 1, start + size)
            cut = cut if cut > start else start + size
            pieces.append((start, cut))
            start = cut
            while start < sentence.end and text[start].isspace():
                start += 1
        if start < sentence.end:
            pieces.append((start, sentence.end))
    return pieces
