import pytest

from qa.evaluation.metrics import (
    abstention_scores,
    contains_answer,
    credited_article,
    exact_match,
    first_relevant_rank,
    mean,
    normalize_answer,
    outcome,
    percentile,
    picked_choice,
    quote_is_verbatim,
    token_f1,
    truthfulness,
)


def test_normalisation_drops_case_punctuation_and_articles():
    assert normalize_answer("The  U.S. Embassy!") == "us embassy"
    assert (
        normalize_answer("An envoy, a minister and THE president.")
        == "envoy minister and president"
    )
    assert normalize_answer("“Seriously flawed” — Trump") == "seriously flawed trump"


def test_containment_matches_whole_words_of_any_gold_answer():
    answer = "Lavrov didn't say when Volker, a former NATO ambassador, would go to Moscow. [1]"
    assert contains_answer(answer, ["Sergey Ryabkov", "the NATO ambassador"])
    assert not contains_answer(answer, ["Sergey Ryabkov", "Thomas Shannon"])
    assert not contains_answer("The U.S. must cut 1755 people.", ["755"])
    assert contains_answer("echoed former President Barack Obama's action", ["Barack Obama"])
    assert not contains_answer("anything at all", [])


def test_exact_match_and_f1_take_the_best_of_several_gold_answers():
    golds = ["Kurt Volker", "Volker"]
    assert exact_match("volker.", golds) == 1.0
    assert exact_match("U.S. envoy Kurt Volker", golds) == 0.0
    # Best gold "Kurt Volker": 2 of 4 predicted tokens are right, both gold tokens found.
    assert token_f1("U.S. envoy Kurt Volker", golds) == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert token_f1("Sergey Lavrov", golds) == 0.0


def test_unanswerable_questions_score_exact_match_only_for_saying_nothing():
    assert exact_match("", []) == 1.0 and token_f1("", []) == 1.0
    assert exact_match("Moscow", []) == 0.0 and token_f1("Moscow", []) == 0.0


def test_abstaining_is_right_only_when_the_question_is_unanswerable():
    assert outcome(answerable=False, abstained=True, holds_answer=False) == "right"
    assert outcome(answerable=False, abstained=False, holds_answer=False) == "wrong"
    assert outcome(answerable=True, abstained=True, holds_answer=False) == "abstained"
    assert outcome(answerable=True, abstained=False, holds_answer=True) == "right"
    assert outcome(answerable=True, abstained=False, holds_answer=False) == "wrong"


def test_truthfulness_costs_a_wrong_answer_more_than_an_abstention():
    assert [truthfulness(r) for r in ("right", "abstained", "wrong")] == [1, 0, -1]
    honest = mean(truthfulness(r) for r in ("right", "abstained", "abstained"))
    guessing = mean(truthfulness(r) for r in ("right", "right", "wrong"))
    assert honest == pytest.approx(1 / 3) and guessing == pytest.approx(1 / 3)
    assert mean(truthfulness(r) for r in ("right", "wrong", "wrong")) < honest


def test_abstention_precision_and_recall_count_abstentions_as_positives():
    # (answerable, abstained): one right abstention, one missed, one needless, two answered.
    pairs = [(False, True), (False, False), (True, True), (True, False), (True, False)]
    assert abstention_scores(pairs) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    only_needless = abstention_scores([(True, True), (True, False)])
    assert only_needless == {"precision": 0.0, "recall": None, "f1": None}
    assert abstention_scores([(False, False)]) == {"precision": None, "recall": 0.0, "f1": None}


def test_evidence_found_by_any_of_its_sentences_else_by_article():
    paragraph = (
        "Lavrov and Tillerson met on the sidelines of an Asian regional gathering. "
        "It was their first face-to-face conversation since Congress passed new legislation."
    )
    passages = [
        ("a1", "Trump signed the bill last week."),
        ("a1", "It was their first face-to-face conversation since Congress passed new "
               "legislation. Trump called it flawed."),
    ]  # fmt: skip
    assert first_relevant_rank(passages, [paragraph], []) == 2
    assert first_relevant_rank(passages, ["Volker will visit Moscow next month."], []) is None
    assert first_relevant_rank(passages, [], ["a1"]) == 1
    assert first_relevant_rank(passages, [], ["b2"]) is None


def test_a_passage_counts_for_a_gold_article_whose_copy_was_folded_into_it():
    assert credited_article(("a1", "b2", "c3"), ["c3", "b2"]) == "b2"
    assert credited_article(("a1", "b2"), ["a1", "b2"]) == "a1"
    assert credited_article(("a1", "b2"), ["z9"]) == "a1"
    assert credited_article(("a1",), []) == "a1"


def test_quote_must_be_the_passage_text_at_its_offsets():
    passage = "Lavrov said Sunday. Volker will go."
    assert quote_is_verbatim("Volker will go.", 120, 135, passage, 100)
    assert not quote_is_verbatim("Volker will go!", 120, 135, passage, 100)
    assert not quote_is_verbatim("Volker will go.", 121, 136, passage, 100)
    assert not quote_is_verbatim("", 100, 100, passage, 100)


def test_a_choice_counts_only_when_the_answer_names_exactly_one():
    choices = ["Bed Bath & Beyond", "IKEA", "Best Buy", "Petco"]
    assert picked_choice("Bed Bath & Beyond turned off the AC. [1]", choices) == choices[0]
    assert picked_choice("Unlike IKEA, Best Buy kept it on.", choices) is None
    assert picked_choice("", choices) is None


def test_p95_latency_is_the_nearest_rank_value():
    assert percentile([float(n) for n in range(1, 21)], 95) == 19.0
    assert percentile([0.5], 95) == 0.5
    assert percentile([], 95) is None and mean([]) is None
