import json
import re

import pytest

from qa.errors import InputError
from qa.evaluation.testset import load_eval_set
from qa.loading import parse_iso_date
from tests.conftest import SEEDS

QUESTION = {"question": "Who is the envoy?", "answers": ["Kurt Volker"]}


def write_lines(path, *lines):
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text)
    return path


def problem_with(tmp_path, line) -> str:
    """The one-line input error for a test set whose second line is `line`."""
    test_set = write_lines(tmp_path / "set.jsonl", QUESTION, line)
    with pytest.raises(InputError) as raised:
        load_eval_set(test_set)
    message = raised.value.message
    assert message.startswith(f"Malformed test set {test_set}: line 2: ")
    assert "\n" not in message and "line 1" not in message
    return message.removeprefix(f"Malformed test set {test_set}: line 2: ").removesuffix(".")


def test_eval_names_the_line_of_a_too_deep_or_huge_value_and_runs_nothing(run, tmp_path):
    test_set = write_lines(
        tmp_path / "bad.jsonl",
        QUESTION,
        "[" * 100_000 + "]" * 100_000,
        '{"question": "How many?", "answers": ["755"], "views": ' + "9" * 100_000 + "}",
    )
    result = run("eval", test_set, "--corpus", SEEDS)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "line 2: not valid JSON (nested more than 100 levels deep)" in message
    assert "line 3: not valid JSON (a number has too many digits)" in message
    assert "Traceback" not in result.output and result.stdout == ""


SURROGATE = "a string holds half of a UTF-16 surrogate pair"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"question": "Q?", "answers": ["a"], "n": 1e999999}', "a number is out of range"),
        ('{"question": "Q?", "answers": ["a"], "n": NaN}', "NaN is not a JSON value"),
        ('{"question": "Q?\\udc00", "answers": ["a"]}', SURROGATE),
        ('{"question": ' * 200 + '"x"' + "}" * 200, "nested more than 100 levels deep"),
    ],
)
def test_values_python_cannot_hold_are_invalid_json_lines(tmp_path, line, problem):
    assert problem_with(tmp_path, line) == f"not valid JSON ({problem})"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"choices": "abc"}, "`choices` must be a list of strings"),
        ({"choices": ["Volker", 2]}, "`choices` must be a list of strings"),
        ({"choices": ["Volker", ""]}, "`choices` must not hold an empty string"),
        ({"question": 5}, "`question` must be a non-empty string"),
        ({"question": None}, "`question` must be a non-empty string"),
        ({"answers": [755]}, "`answers` must be a string or a list of strings"),
        ({"answers": True}, "`answers` must be a string or a list of strings"),
        ({"answers": [["Volker"]]}, "`answers` must be a string or a list of strings"),
        ({"answer": 755}, "`answer` must be a string"),
        ({"answers": None, "answer": ["Volker"]}, "`answer` must be a string"),
        ({"answerable": "yes"}, "`answerable` must be true or false"),
        ({"answerable": 1}, "`answerable` must be true or false"),
        ({"evidence": [True]}, "`evidence` must be a string or a list of strings"),
        ({"evidence": ["  "]}, "`evidence` must not hold an empty string"),
        ({"article_id": 7}, "`article_id` must be a string or a list of strings"),
        ({"article_ids": [None]}, "`article_ids` must be a string or a list of strings"),
        ({"article_ids": ""}, "`article_ids` must not hold an empty string"),
        ({"type": ["who"]}, "`type` must be a string"),
        ({"type": False}, "`type` must be a string"),
        ({"date": 20170807}, "`date` must be a string"),
        ({"id": True}, "`id` must be a non-empty string or an integer"),
        ({"id": 1.5}, "`id` must be a non-empty string or an integer"),
        ({"id": ""}, "`id` must be a non-empty string or an integer"),
        ({"id": ["a"]}, "`id` must be a non-empty string or an integer"),
    ],
)
def test_a_field_of_the_wrong_type_is_rejected_with_its_line(tmp_path, fields, problem):
    assert problem_with(tmp_path, {**QUESTION, **fields}) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("20170807", "'20170807' is not a date in the form YYYY-MM-DD"),
        ("2017-W32-1", "'2017-W32-1' is not a date in the form YYYY-MM-DD"),
        ("2017-08-07T10:00:00", "'2017-08-07T10:00:00' is not a date in the form YYYY-MM-DD"),
        ("2017-8-7", "'2017-8-7' is not a date in the form YYYY-MM-DD"),
        ("２０１７-０８-０７", "'２０１７-０８-０７' is not a date in the form YYYY-MM-DD"),
        ("2017-02-30", "'2017-02-30' is not a valid date (day is out of range for month)"),
    ],
)
def test_a_test_set_date_takes_only_the_form_yyyy_mm_dd(tmp_path, value, problem):
    with pytest.raises(ValueError, match=f"^{re.escape(problem)}$"):
        parse_iso_date(value)
    assert problem_with(tmp_path, {**QUESTION, "date": value}) == f"invalid `date`: {problem}"


def test_well_formed_fields_are_read(tmp_path):
    test_set = write_lines(
        tmp_path / "set.jsonl",
        {**QUESTION, "id": 7, "date": "2017-08-07", "choices": ["Kurt Volker", "Rex Tillerson"],
         "article_ids": ["a1", "a2"], "evidence": "Volker went.", "type": "who"},
    )  # fmt: skip
    (question,) = load_eval_set(test_set).questions
    assert (question.id, question.date, question.choices, question.article_ids) == (
        "7", "2017-08-07", ("Kurt Volker", "Rex Tillerson"), ("a1", "a2"),
    )  # fmt: skip
    assert parse_iso_date("2017-08-07") == "2017-08-07"


def test_a_line_separator_inside_a_question_does_not_split_the_line(tmp_path):
    path = tmp_path / "set.jsonl"
    question = {"question": "Who said\u2028this?", "answers": ["Lavrov"]}
    path.write_text(json.dumps(question, ensure_ascii=False) + "\n")
    (read,) = load_eval_set(path).questions
    assert read.question == "Who said\u2028this?"
