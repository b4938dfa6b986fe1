"""The keyword index ranks as FTS5's bm25() would over every chunk, at a cost that stays flat."""

import random

from qa.keyword_index import POSTINGS_BUDGET, KeywordIndex, any_of, tokenize
from qa.store import IndexedChunk

WORDS = [
    "council",
    "harbour",
    "ferry",
    "bridge",
    "school",
    "market",
    "budget",
    "mayor",
    "river",
    "station",
]


def index_of(tmp_path, texts):
    index = KeywordIndex.open(tmp_path)
    index.add(
        IndexedChunk(f"c{n}", f"a{n}", "v1", text, 20240101 + n % 28)
        for n, text in enumerate(texts)
    )
    return index


def full_ranking(index, question, n):
    """FTS5's own bm25() over every chunk holding any of the question's terms."""
    query = any_of(list(dict.fromkeys(tokenize(question))))
    rows = index.connection.execute(
        "SELECT c.chunk_id, -bm25(terms) FROM terms JOIN chunks c ON c.rowid = terms.rowid"
        " WHERE terms MATCH ? ORDER BY bm25(terms) LIMIT ?",
        (query, n),
    )
    return [(chunk_id, score) for chunk_id, score in rows]


def test_a_question_with_common_words_ranks_as_a_full_search_would(tmp_path):
    chance = random.Random(7)
    texts = [" ".join(chance.choices(WORDS, k=40)) for _ in range(POSTINGS_BUDGET * 2)]
    texts[1234] += " Zephyrine sailed the ferry"
    texts[2345] += " the Zephyrine arrived late"
    texts[3456] += " Zephyrine and Ostrava"
    index = index_of(tmp_path, texts)
    question = "When did the ferry Zephyrine reach the harbour station?"
    found = index.search(question, 5)
    # Only the chunks holding the rare word are ranked: the others share nothing but common
    # words with the question. Those it gives come as a full search ranks and scores them.
    assert {chunk_id for chunk_id, _ in found} == {"c1234", "c2345", "c3456"}
    expected = full_ranking(index, question, len(found))
    assert [chunk_id for chunk_id, _ in found] == [chunk_id for chunk_id, _ in expected]
    for (_, score), (_, full) in zip(found, expected, strict=True):
        assert abs(score - full) < 1e-9


def test_scores_of_given_chunks_are_fts5s_bm25(tmp_path):
    index = index_of(tmp_path, [f"the {word} met the {word} council" for word in WORDS])
    question = "Where did the harbour council meet?"
    expected = dict(full_ranking(index, question, 100))
    scored = index.scores(question, [f"c{n}" for n in range(len(WORDS))])
    assert scored.keys() == expected.keys()
    for chunk_id, score in scored.items():
        assert abs(score - expected[chunk_id]) < 1e-9


def test_a_date_range_leaves_out_chunks_outside_it_and_undated_ones(tmp_path):
    index = KeywordIndex.open(tmp_path)
    index.add(
        [
            IndexedChunk("early", "a", "v", "ferry timetable", 20240101),
            IndexedChunk("late", "b", "v", "ferry timetable", 20240301),
            IndexedChunk("undated", "c", "v", "ferry timetable", None),
        ]
    )
    assert [c for c, _ in index.search("ferry", 5, as_of="2024-02-01")] == ["early"]
    assert [c for c, _ in index.search("ferry", 5, since="2024-02-01")] == ["late"]
    assert {c for c, _ in index.search("ferry", 5)} == {"early", "late", "undated"}
