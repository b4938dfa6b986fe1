"""qa from LangChain: the retriever, the answer chain, and the README's examples of both."""

import asyncio
import re

import pytest

from qa.answering import Answer
from qa.citations import checked_answer
from qa.loading import load_articles
from qa.settings import get_settings
from tests.conftest import KREMLIN_QUESTION, ROOT, SEED_ARTICLE
from tests.servers import SERVED_MODEL
from tests.test_llm import CITING_QUESTION

README_SECTION = "## Use qa from Python, LangChain and agents"


def seed_text() -> str:
    return load_articles([SEED_ARTICLE]).articles[0].text


def assert_quotes_are_the_article(answer: Answer) -> None:
    text = seed_text()
    for citation in answer.citations:
        assert text[citation.start : citation.end] == citation.quote


def readme_examples() -> list[str]:
    """The Python blocks of the README's LangChain section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_retriever_documents_are_exact_spans_of_their_articles(seeded):
    from qa.langchain import NewsRetriever

    documents = NewsRetriever(k=3).invoke(KREMLIN_QUESTION)
    assert len(documents) == 3
    text = seed_text()
    for rank, document in enumerate(documents, start=1):
        meta = document.metadata
        assert text[meta["start"] : meta["end"]] == document.page_content
        assert meta["rank"] == rank and document.id == meta["chunk_id"]
        assert meta["article_id"] == SEED_ARTICLE.stem and meta["date"]
        assert isinstance(meta["score"], float)


def test_retriever_takes_its_collection_from_settings_or_options(seeded, tmp_path):
    from qa.errors import EmptyCollectionError
    from qa.langchain import NewsRetriever

    elsewhere = get_settings(home=tmp_path / "nothing-here")
    with pytest.raises(EmptyCollectionError):
        NewsRetriever(settings=elsewhere).invoke(KREMLIN_QUESTION)
    # An option given beside the settings wins over them.
    seeded_home = get_settings().store.home
    found = NewsRetriever(settings=elsewhere, home=seeded_home, k=2).invoke(KREMLIN_QUESTION)
    assert len(found) == 2


def test_chain_answers_like_qa_ask_with_checked_citations(seeded):
    from qa.langchain import NewsQAChain

    chain = NewsQAChain(k=3)
    answer = chain.invoke(KREMLIN_QUESTION)
    assert isinstance(answer, Answer)
    assert answer.citations and not answer.abstained
    assert_quotes_are_the_article(answer)
    # The same question the same way, asked through the core, gives the same answer.
    from qa.answering import Assistant

    assert answer == Assistant.open(get_settings(k=3)).ask(KREMLIN_QUESTION).answer()


def test_chain_batch_stream_and_ainvoke_give_the_answer_invoke_gives(seeded):
    from qa.langchain import NewsQAChain

    chain = NewsQAChain(k=3)
    questions = [KREMLIN_QUESTION, "Who is Kurt Volker?"]
    answers = [chain.invoke(question) for question in questions]
    assert chain.batch(questions) == answers
    assert asyncio.run(chain.ainvoke(KREMLIN_QUESTION)) == answers[0]
    *pieces, last = chain.stream(KREMLIN_QUESTION)
    assert pieces and all(isinstance(piece, str) for piece in pieces)
    assert last == answers[0]


def test_chain_astream_yields_the_pieces_then_the_answer(seeded):
    from qa.langchain import NewsQAChain

    chain = NewsQAChain(k=3)

    async def streamed() -> list:
        return [piece async for piece in chain.astream(KREMLIN_QUESTION)]

    *pieces, last = asyncio.run(streamed())
    assert pieces and all(isinstance(piece, str) for piece in pieces)
    assert last == chain.invoke(KREMLIN_QUESTION)


def test_chain_errors_are_qa_errors_with_their_message(tmp_path):
    from qa.errors import EmptyCollectionError
    from qa.langchain import NewsQAChain

    with pytest.raises(EmptyCollectionError, match="qa ingest"):
        NewsQAChain(home=tmp_path / "empty").invoke(KREMLIN_QUESTION)


@pytest.mark.server
@pytest.mark.llm
def test_chain_streams_a_models_draft_then_its_checked_answer(seeded, llama_server):
    from qa.langchain import NewsQAChain

    chain = NewsQAChain(llm=f"openai:{SERVED_MODEL}", base_url=llama_server, k=3)
    *pieces, answer = chain.stream(CITING_QUESTION)
    assert len(pieces) > 1
    assert (answer.answerer, answer.model) == ("openai", SERVED_MODEL)
    draft = "".join(pieces)
    assert answer == checked_answer(CITING_QUESTION, draft, answer.passages, "openai", SERVED_MODEL)
    assert_quotes_are_the_article(answer)


def test_readme_examples_run_on_the_seed(seeded, capsys):
    examples = [block for block in readme_examples() if "langchain" in block.lower()
                or "NewsRetriever" in block or "NewsQAChain" in block]  # fmt: skip
    assert len(examples) == 2
    retriever_example, chain_example = examples
    capsys.readouterr()

    exec(retriever_example, {})
    printed = capsys.readouterr().out.splitlines()
    text = seed_text()
    spans = [re.match(r"#\d+ [\d.]+ (\S+):(\d+)-(\d+)$", line) for line in printed[::2]]
    assert len(spans) == 3 and all(spans), printed
    for span, content in zip(spans, printed[1::2], strict=True):
        assert span[1] == SEED_ARTICLE.stem
        start = int(span[2])
        shown = content.strip().removesuffix("…").strip()
        assert " ".join(text[start : int(span[3])].split()).startswith(" ".join(shown.split()))

    names: dict = {}
    exec(chain_example, names)
    printed = capsys.readouterr().out
    assert names["answer"].citations and names["answer"].text in printed
    assert_quotes_are_the_article(names["answer"])
    assert isinstance(names["piece"], Answer)
    assert f"{len(names['piece'].citations)} citation(s) checked" in printed
