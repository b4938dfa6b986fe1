import json

import pytest

from qa.short_answers import answer_kind, short_answer
from tests.conftest import KREMLIN_QUESTION


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many people were expelled?", "number"),
        ("When did the talks begin?", "time"),
        ("In what year was the treaty signed?", "time"),
        ("Who was the chief executive when the service began?", "person"),
        ("In which country is Normandy?", "place"),
        ("Which company turned off the air conditioning?", "organisation"),
        ("Why did the talks fail?", None),
    ],
)
def test_the_kind_of_answer_comes_from_the_question(question, kind):
    assert answer_kind(question) == kind


@pytest.mark.parametrize(
    ("question", "sentence", "span"),
    [
        ("How long did Western Europe control Cyprus?",
         "Western Europe controlled the island for 380 years, from 1191.", "380 years"),
        ("When did Lavrov meet Tillerson?", "Lavrov met Tillerson in Manila on Sunday.", "Sunday"),
        ("Which company is accused of turning off the AC in its stores?",
         "But Bed Bath & Beyond is reportedly dealing with heated customers at its stores.",
         "Bed Bath & Beyond"),
        ("Who was Edward the Confessor's half-brother?",
         "Edward the Confessor was the half-brother of Harthacnut.", "Harthacnut"),
    ],
)  # fmt: skip
def test_the_one_span_of_that_kind_not_named_by_the_question_is_the_short_answer(
    question, sentence, span
):
    found = short_answer(answer_kind(question), sentence, question)
    assert found is not None and found.text == span
    assert sentence[found.start : found.end] == span


SPACES = ["  ", "\u00a0", " \u00a0", "\t"]


@pytest.mark.parametrize("space", SPACES)
def test_a_name_spaced_oddly_is_the_short_answer_as_written(space):
    sentence = f"The envoy to Ukraine is Kurt{space}Volker, officials said."
    found = short_answer("person", sentence, "Who is the envoy to Ukraine?")
    assert found is not None and found.text == f"Kurt{space}Volker"
    assert sentence[found.start : found.end] == found.text


@pytest.mark.parametrize("space", SPACES)
def test_asking_about_a_name_spaced_oddly_answers_with_its_sentence(run, tmp_path, space):
    article = tmp_path / "envoy.txt"
    article.write_text(
        "date 2024-02-03\n"
        f"The envoy to Ukraine is Kurt{space}Volker, a former ambassador to NATO, officials said.\n"
    )
    assert run("ingest", article).exit_code == 0
    result = run("ask", "Who is the envoy to Ukraine?", "--json")
    assert result.exit_code == 0, result.output
    (citation,) = json.loads(result.stdout)["citations"]
    assert f"Kurt{space}Volker" in citation["quote"]


def test_no_short_answer_when_the_sentence_holds_two_candidates_or_none():
    question = "Who met Lavrov?"
    assert short_answer("person", "Tillerson and Volker met Lavrov in Manila.", question) is None
    assert short_answer("number", "The talks went well.", "How many talks?") is None


def test_a_short_answer_leads_and_the_whole_sentence_is_still_quoted(seeded):
    answer = json.loads(seeded("ask", KREMLIN_QUESTION, "--json").stdout)
    assert answer["short_answer"] == "755 people"
    assert answer["answer"] == "755 people [1]"
    (citation,) = answer["citations"]
    assert "755 people" in citation["quote"] and citation["quote"].endswith("election.")
