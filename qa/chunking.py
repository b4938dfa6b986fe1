"""Cut articles into overlapping chunks of whole sentences, keeping offsets."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from qa.loading import Article
from qa.sentences import Span, split_sentences
from qa.settings import ChunkSettings

__all__ = ["Chunk", "ChunkSettings", "chunk_article", "embedding_text"]


def embedding_text(chunking: ChunkSettings, article: Article, chunk: "Chunk") -> str:
    """What the embedding model sees: the chunk under its article's title and date.

    Off by default: on both dev benchmarks the header did not help hybrid retrieval and
    made dense retrieval worse. The stored text and its offsets are the article's either way.
    """
    if not chunking.header:
        return chunk.text
    return f"{article.title} ({article.date or 'undated'})\n{chunk.text}"


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
    """Chunks of whole paragraphs up to `settings.size` chars, sharing up to `overlap` chars.

    A paragraph that fits in a chunk is never split, so it can be quoted whole and its
    opening, which usually names its subject, stays with it. Longer paragraphs are cut into
    overlapping runs of whole sentences.
    """
    units = [
        window
        for paragraph in _paragraphs(article.text, split_sentences(article.text))
        for window in _sentence_windows(
            _pieces(article.text, paragraph, settings.size), settings.size, settings.overlap
        )
    ]
    windows = _pack(units, settings.size, settings.overlap)
    prefix = chunk_id_prefix(article, settings)
    return [
        Chunk(f"{prefix}:{index:04d}", article.id, index, start, end, article.text[start:end])
        for index, (start, end) in enumerate(windows)
    ]


def chunk_id_prefix(article: Article, settings: ChunkSettings) -> str:
    """Stable per article content and settings, so re-chunking gives the same ids."""
    digest = hashlib.sha256(f"{article.hash}:{settings.size}:{settings.overlap}".encode())
    return f"{article.id}:{digest.hexdigest()[:12]}"


def _paragraphs(text: str, sentences: list[Span]) -> list[list[Span]]:
    """Sentences grouped by paragraph: a line break between two sentences starts a new one."""
    paragraphs: list[list[Span]] = []
    for sentence in sentences:
        if paragraphs and "\n" not in text[paragraphs[-1][-1].end : sentence.start]:
            paragraphs[-1].append(sentence)
        else:
            paragraphs.append([sentence])
    return paragraphs


def _sentence_windows(
    pieces: list[tuple[int, int]], size: int, overlap: int
) -> list[tuple[int, int]]:
    """Runs of whole pieces up to `size` chars; each next run repeats at least `overlap` chars.

    A paragraph that fits gives a single run, itself.
    """
    return _runs(pieces, size, lambda first, last: _next_first(pieces, first, last, overlap))


def _pack(units: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Consecutive units merged up to `size` chars; the next chunk repeats the trailing units
    that fit in `overlap` chars, so a unit is never cut."""

    def following(first: int, last: int) -> int:
        start = last + 1
        while start - 1 > first and units[last][1] - units[start - 1][0] <= overlap:
            start -= 1
        return start

    return _runs(units, size, following)


def _runs(
    spans: list[tuple[int, int]], size: int, next_first: Callable[[int, int], int]
) -> list[tuple[int, int]]:
    """Greedy runs of consecutive spans up to `size` chars; `next_first(first, last)` says
    where the run after spans[first..last] starts."""
    runs: list[tuple[int, int]] = []
    first = 0
    while first < len(spans):
        last = first
        while last + 1 < len(spans) and spans[last + 1][1] - spans[first][0] <= size:
            last += 1
        runs.append((spans[first][0], spans[last][1]))
        if last == len(spans) - 1:
            break
        first = next_first(first, last)
    return runs


def _next_first(pieces: list[tuple[int, int]], first: int, last: int, overlap: int) -> int:
    """Start the next run far enough back that at least `overlap` chars repeat.

    Never as far back as `first`, so every run moves forward.
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
