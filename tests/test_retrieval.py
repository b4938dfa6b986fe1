import json
import shutil

import numpy as np

from qa import chroma_gateway
from qa.answering import Assistant
from qa.chunking import chunk_article
from qa.embeddings import get_embedder
from qa.keyword_index import FILE_NAME, KeywordIndex, now_ms
from qa.loading import load_articles
from qa.retrieval import SAME_ARTICLE_PENALTY, diversified
from qa.settings import get_settings
from qa.store import ChunkHit, ChunkMeta, Store

WIRE_STORY = (
    "The city council of Riverton voted 7 to 2 on Tuesday to build a new bridge over the "
    "Kessel River. The bridge will cost 48 million dollars and open in 2027, officials said. "
    "Opponents argued that the money should go to schools instead."
)
ARTICLES = [
    {"id": "bridge-ap", "title": "Riverton approves bridge", "date": "2022-03-01",
     "url": "https://example.com/ap/bridge", "text": WIRE_STORY},
    {"id": "bridge-copy", "title": "Council backs Kessel River bridge", "date": "2022-03-02",
     "url": "https://example.com/daily/bridge", "text": "RIVERTON (AP) — " + WIRE_STORY},
    {"id": "zoo", "title": "Zoo welcomes panda cub", "date": "2022-05-10",
     "text": "The Riverton zoo welcomed a panda cub named Quillon on Monday. Keepers said the "
             "cub weighs 150 grams and is healthy."},
    {"id": "budget", "title": "School budget grows", "date": "2022-06-15",
     "text": "The school board raised the budget to 12 million dollars for new teachers. "
             "The vote was unanimous."},
]  # fmt: skip


def write_corpus(folder, articles=ARTICLES):
    folder.mkdir(exist_ok=True)
    path = folder / "news.jsonl"
    path.write_text("\n".join(json.dumps(article) for article in articles) + "\n")
    return path


def ask_json(run, *args):
    result = run("ask", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ingested(run, tmp_path, articles=ARTICLES):
    corpus = write_corpus(tmp_path / "corpus", articles)
    result = run("ingest", corpus)
    assert result.exit_code == 0, result.output
    return corpus


def test_a_rare_name_is_found_by_keyword_and_hybrid_search(run, tmp_path):
    ingested(run, tmp_path)
    for mode in ("hybrid", "keyword"):
        answer = ask_json(run, "What is the panda cub called? Quillon?", "--retrieval", mode)
        assert answer["passages"][0]["article_id"] == "zoo", mode


def test_keyword_search_returns_only_passages_sharing_a_word(run, tmp_path):
    ingested(run, tmp_path)
    answer = ask_json(run, "panda", "--retrieval", "keyword", "--k", "5")
    assert [p["article_id"] for p in answer["passages"]] == ["zoo"]
    dense = ask_json(run, "panda", "--retrieval", "dense", "--k", "5")
    assert len(dense["passages"]) > 1


def test_copies_of_one_wire_story_give_one_passage_listing_the_others(run, tmp_path):
    ingested(run, tmp_path)
    answer = ask_json(run, "How much will the Kessel River bridge cost?", "--k", "3")
    story = [p for p in answer["passages"] if p["article_id"].startswith("bridge")]
    assert len(story) == 1
    (copy,) = story[0]["also_in"]
    other = {"bridge-ap", "bridge-copy"} - {story[0]["article_id"]}
    assert copy["article_id"] == other.pop()
    assert copy["url"].startswith("https://example.com/")
    cited = answer["citations"][0]
    assert cited["also_in"] == story[0]["also_in"]


def test_copies_are_named_under_the_citation_in_the_terminal(run, tmp_path):
    ingested(run, tmp_path)
    result = run("ask", "How much will the Kessel River bridge cost?", "--k", "3")
    assert result.exit_code == 0, result.output
    assert "also in bridge-" in result.stdout


def test_as_of_keeps_newer_articles_out_of_keyword_results(run, tmp_path):
    ingested(run, tmp_path)
    answer = ask_json(run, "budget dollars", "--retrieval", "keyword", "--as-of", "2022-04-01")
    assert answer["passages"]
    assert all(p["date"] <= "2022-04-01" for p in answer["passages"])


def test_an_updated_article_is_searched_in_its_new_version_only(run, tmp_path):
    ingested(run, tmp_path)
    changed = [dict(a) for a in ARTICLES]
    changed[2]["text"] = "The Riverton zoo welcomed a giraffe calf named Ostrava on Monday."
    ingested(run, tmp_path, changed)
    assert ask_json(run, "Ostrava", "--retrieval", "keyword")["passages"][0]["article_id"] == "zoo"
    assert ask_json(run, "Quillon", "--retrieval", "keyword")["passages"] == []


def recorded_by_another_writer(corpus):
    """Chunk, embed and record the corpus's articles straight into the store, as a writer on
    another machine leaves them: in Chroma and recorded, not in this machine's keyword index."""
    settings = get_settings()
    batch = []
    for article in load_articles([corpus]).articles:
        chunks = chunk_article(article, settings.chunking)
        vectors = get_embedder(settings).embed_documents([c.text for c in chunks])
        batch.append((article, chunks, vectors))
    store = Store.open(settings)
    store.put_chunks(batch)
    store.put_records(batch, now_ms())


def test_chunks_another_writer_recorded_are_found_by_keyword(run, tmp_path):
    # This machine's keyword index catches up from the records.
    ingested(run, tmp_path)
    assert ask_json(run, "Zephyrine", "--retrieval", "keyword")["passages"] == []
    text = "Firefighters rescued a cat named Zephyrine from a Riverton oak tree."
    late = {"id": "late", "title": "Late news", "date": "2022-07-01", "text": text}
    recorded_by_another_writer(write_corpus(tmp_path / "late", [late]))
    answer = ask_json(run, "Zephyrine", "--retrieval", "keyword")
    assert [p["article_id"] for p in answer["passages"]] == ["late"]


def test_every_page_of_another_writers_records_is_caught_up(run, tmp_path, monkeypatch):
    # The records written since the index last looked are read a page at a time (a writer's
    # last look covers its whole run); here five records come in three pages.
    monkeypatch.setattr(chroma_gateway, "PAGE_SIZE", 2)
    ingested(run, tmp_path)
    assert ask_json(run, "Zephyrine", "--retrieval", "keyword")["passages"] == []
    names = ["Zephyrine", "Quorvath", "Belmiro", "Tansley", "Odrova"]
    late = [
        {"id": f"late-{n}", "title": f"Late news {n}", "date": "2022-07-01",
         "text": f"Firefighters rescued a cat named {name} from a Riverton oak tree."}
        for n, name in enumerate(names)
    ]  # fmt: skip
    recorded_by_another_writer(write_corpus(tmp_path / "late", late))
    for n, name in enumerate(names):
        answer = ask_json(run, name, "--retrieval", "keyword")
        assert [p["article_id"] for p in answer["passages"]] == [f"late-{n}"]


def test_a_damaged_keyword_index_is_rebuilt(run, tmp_path):
    ingested(run, tmp_path)
    folder = Store.open(get_settings()).cache_dir
    (folder / FILE_NAME).write_bytes(b"not an index" * 1000)
    answer = ask_json(run, "Quillon", "--retrieval", "keyword")
    assert [p["article_id"] for p in answer["passages"]] == ["zoo"]
    assert KeywordIndex.open(folder).chunk_count() > 0


def test_reset_removes_the_keyword_index(run, tmp_path):
    ingested(run, tmp_path)
    folder = Store.open(get_settings()).cache_dir
    assert folder.exists()
    assert run("reset", "--yes").exit_code == 0
    assert not folder.exists()


def test_passages_keep_exact_offsets_when_chunks_are_embedded_with_a_header(
    run, tmp_path, monkeypatch
):
    monkeypatch.setenv("QA_CHUNK_HEADER", "true")
    corpus = ingested(run, tmp_path)
    texts = {a.id: a.text for a in load_articles([corpus]).articles}
    assistant = Assistant.open(get_settings())
    for passage in assistant.retrieve("Who welcomed a panda cub?", k=4):
        assert texts[passage.article_id][passage.start : passage.end] == passage.text


def test_retrieval_mode_is_recorded_in_eval_reports(run, tmp_path):
    corpus = ingested(run, tmp_path)
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "What is the cub called?", "answer": "Quillon"}))
    out = tmp_path / "report.json"
    result = run("eval", questions, "--corpus", corpus.parent, "--retrieval", "dense",
                 "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["settings"]["retrieval"] == "dense"
    shutil.rmtree(corpus.parent)


def hit_of(article_id, index):
    meta = ChunkMeta(article_id, None, article_id, None, None, None, 0, 1, index)
    return ChunkHit(f"{article_id}-{index}", "text", meta, 0.5)


def test_a_near_tie_goes_to_another_article_once_one_has_a_passage_ranked():
    hits = [hit_of("long", 0), hit_of("long", 1), hit_of("other", 0), hit_of("long", 2)]
    close = SAME_ARTICLE_PENALTY / 2
    blended = np.array([1.0, 0.9, 0.9 - close, 0.8])
    assert [h.chunk_id for h in diversified(hits, blended)] == [
        "long-0", "other-0", "long-1", "long-2"
    ]  # fmt: skip
    # A passage ahead by more than the penalty keeps its place.
    blended = np.array([1.0, 0.9, 0.9 - 2 * SAME_ARTICLE_PENALTY, 0.5])
    assert [h.chunk_id for h in diversified(hits, blended)] == [
        "long-0", "long-1", "other-0", "long-2"
    ]  # fmt: skip


def test_a_date_range_gives_the_nearest_chunks_inside_it_even_when_newer_ones_are_nearer(
    run, tmp_path
):
    # Twelve near-identical reports from May, two from January, one undated: the nearest
    # chunks to the question are mostly outside an as-of date in March.
    articles = [
        {"id": f"may-{n}", "date": f"2022-05-{n + 1:02d}",
         "text": f"Ferry strike day {n}: the Harbor Line ferry crews stayed off work again."}
        for n in range(12)
    ] + [
        {"id": "jan-strike", "date": "2022-01-10",
         "text": "Harbor Line ferry crews voted to strike over pay."},
        {"id": "jan-market", "date": "2022-01-11",
         "text": "The fish market reopened after repairs to its roof."},
        {"id": "undated", "text": "Harbor Line ferry crews went on strike, a notice said."},
    ]  # fmt: skip
    ingested(run, tmp_path, articles)
    settings = get_settings()
    store = Store.open(settings)
    vector = get_embedder(settings).embed_query("Did the Harbor Line ferry crews strike?")

    def nearest_ids(hits):
        return [hit.meta.article_id for hit in hits]

    every = store.query(vector, 15)
    assert nearest_ids(every)[0] != "jan-strike"
    in_january = [hit for hit in every if (hit.meta.date or "").startswith("2022-01")]
    assert nearest_ids(store.query(vector, 2, as_of="2022-03-01")) == nearest_ids(in_january)
    in_may = [hit for hit in every if (hit.meta.date or "") >= "2022-05-03"]
    assert nearest_ids(store.query(vector, 4, since="2022-05-03")) == nearest_ids(in_may)[:4]
    assert store.query(vector, 3, as_of="2021-12-31") == []
