import json

from qa.citations import NO_ANSWER
from qa.loading import load_articles
from tests.conftest import KREMLIN_QUESTION, SEED_ARTICLE, SEEDS


def ask_json(run, *args):
    result = run("ask", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_seed_question_is_answered_with_755_and_a_citation_quoting_it(seeded):
    answer = ask_json(seeded, KREMLIN_QUESTION)
    assert "755" in answer["answer"]
    assert not answer["abstained"]
    assert answer["answerer"] == "extractive"
    assert any("755" in citation["quote"] for citation in answer["citations"])


def test_every_quote_is_verbatim_at_its_offsets_in_the_article(seeded):
    article = load_articles([SEED_ARTICLE]).articles[0]
    for question in (KREMLIN_QUESTION, "Who is the U.S. envoy for Ukraine negotiations?",
                     "Where did Lavrov and Tillerson meet?"):  # fmt: skip
        answer = ask_json(seeded, question)
        assert answer["citations"], question
        for citation in answer["citations"]:
            assert article.text[citation["start"] : citation["end"]] == citation["quote"]
            assert f"[{citation['marker']}]" in answer["answer"]
        for passage in answer["passages"]:
            assert article.text[passage["start"] : passage["end"]] == passage["text"]


def test_json_answer_has_the_documented_shape(seeded):
    answer = ask_json(seeded, KREMLIN_QUESTION, "--k", "3")
    assert {"question", "answer", "abstained", "citations", "passages", "answerer"} <= set(answer)
    assert len(answer["passages"]) == 3
    assert [p["rank"] for p in answer["passages"]] == [1, 2, 3]
    citation = answer["citations"][0]
    assert set(citation) >= {
        "marker",
        "article_id",
        "title",
        "date",
        "source",
        "quote",
        "start",
        "end",
    }
    assert citation["date"] == "2017-08-06"


def test_unsupported_question_abstains_instead_of_guessing(seeded):
    answer = ask_json(seeded, "What was the final score of the World Cup football final?")
    assert answer["abstained"]
    assert answer["answer"] == NO_ANSWER
    assert answer["citations"] == []


def test_terminal_output_shows_answer_and_numbered_sources(seeded):
    result = seeded("ask", KREMLIN_QUESTION)
    assert result.exit_code == 0
    assert "755" in result.stdout
    assert "[1]" in result.stdout and "000_0ae6590b4ea8367e:" in result.stdout


def test_as_of_before_the_article_date_finds_nothing(seeded):
    answer = ask_json(seeded, KREMLIN_QUESTION, "--as-of", "2017-08-05")
    assert answer["passages"] == [] and answer["abstained"]
    assert ask_json(seeded, KREMLIN_QUESTION, "--as-of", "2017-08-06")["passages"]


def test_asking_before_anything_was_ingested_says_what_to_do(run):
    result = run("ask", KREMLIN_QUESTION)
    assert result.exit_code == 1
    assert "Nothing has been ingested" in result.stderr and "qa ingest" in result.stderr
    assert "Traceback" not in result.output


def test_bad_date_is_a_usage_error(seeded):
    result = seeded("ask", KREMLIN_QUESTION, "--as-of", "last tuesday")
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr


def test_seed_ingest_then_ask_works_in_a_named_collection(run):
    assert run("ingest", SEEDS, "--collection", "news").exit_code == 0
    assert "755" in ask_json(run, KREMLIN_QUESTION, "--collection", "news")["answer"]
    assert run("ask", KREMLIN_QUESTION, "--collection", "other").exit_code == 1


def test_an_empty_question_is_a_usage_error(seeded):
    for question in ("", "   "):
        result = seeded("ask", question)
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            'Error: The question is empty. Example: qa ask "Who is Kurt Volker?"'
        )
