import itertools

from qa.chunking import ChunkSettings, chunk_article
from qa.loading import Article, load_articles
from qa.sentences import split_sentences
from tests.conftest import SEED_ARTICLE


def seed():
    return load_articles([SEED_ARTICLE]).articles[0]


def test_chunks_are_verbatim_slices_of_the_article():
    article = seed()
    chunks = chunk_article(article, ChunkSettings(size=400, overlap=80))
    assert len(chunks) > 5
    for chunk in chunks:
        assert article.text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= 400


def test_chunks_cover_the_whole_article_and_overlap():
    article = seed()
    chunks = chunk_article(article, ChunkSettings(size=400, overlap=80))
    assert chunks[0].start == 0 and chunks[-1].end == len(article.text)
    for before, after in itertools.pairwise(chunks):
        gap = article.text[before.end : after.start]
        assert not gap.strip(), "text between chunks would be lost"
        assert after.start > before.start
    overlapping = [a for b, a in itertools.pairwise(chunks) if a.start < b.end]
    assert overlapping, "neighbouring chunks share context"


def test_chunk_ids_are_stable_and_change_with_content_or_settings():
    article = seed()
    ids = [c.id for c in chunk_article(article, ChunkSettings(size=400, overlap=80))]
    assert ids == [c.id for c in chunk_article(seed(), ChunkSettings(size=400, overlap=80))]
    assert ids != [c.id for c in chunk_article(article, ChunkSettings(size=500, overlap=80))]
    edited = Article(id=article.id, title=article.title, text=article.text + " More.")
    assert ids[0] != chunk_article(edited, ChunkSettings(size=400, overlap=80))[0].id


def test_a_sentence_longer_than_a_chunk_is_cut_at_spaces():
    article = Article(id="long", title="t", text=" ".join(["word"] * 400) + ".")
    chunks = chunk_article(article, ChunkSettings(size=200, overlap=0))
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(not c.text.startswith(" ") and c.text.startswith("word") for c in chunks)


def test_sentences_do_not_split_at_abbreviations():
    text = "U.S. Secretary of State Rex Tillerson met Lavrov. Mr. Volker will go. He said so."
    assert [s.text for s in split_sentences(text)] == [
        "U.S. Secretary of State Rex Tillerson met Lavrov.",
        "Mr. Volker will go.",
        "He said so.",
    ]
