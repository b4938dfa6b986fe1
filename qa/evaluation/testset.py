"""Test sets for `qa eval`: JSON Lines, one question a line, checked whole before anything runs."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.json_text import UnreadableJSON, json_lines, parse_json
from qa.loading import parse_iso_date

# Enough problems to fix a batch at a time without burying the first one.
MAX_REPORTED_PROBLEMS = 5
# Fields read into their own attributes; every other scalar field is a label for --by.
QUESTION_FIELDS = {"question", "answer", "answers", "evidence", "article_ids", "choices", "id"}


@dataclass(frozen=True)
class EvalQuestion:
    """One line of a test set."""

    line: int
    id: str
    question: str
    answers: tuple[str, ...] = ()
    answerable: bool = True
    article_ids: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    type: str | None = None
    date: str | None = None
    choices: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSet:
    path: Path
    sha256: str
    questions: list[EvalQuestion]


def load_eval_set(path: Path) -> EvalSet:
    """Read and check a whole JSONL test set; any problem is an input error naming its line."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"Cannot read test set {path}: {error.strerror or error}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"Test set {path} is not UTF-8 text.") from None
    questions, problems = parse_eval_lines(text)
    if not problems and not questions:
        problems.append("no questions (expected one JSON object a line)")
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED_PROBLEMS])
        more = len(problems) - MAX_REPORTED_PROBLEMS
        raise InputError(
            f"Malformed test set {path}: {shown}" + (f" (and {more} more)" if more > 0 else "."),
            "Nothing was run.",
        )
    return EvalSet(path, hashlib.sha256(raw).hexdigest(), questions)


def parse_eval_lines(text: str) -> tuple[list[EvalQuestion], list[str]]:
    """Questions, and problems as `line N: what is wrong`."""
    questions: list[EvalQuestion] = []
    problems: list[str] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(json_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except UnreadableJSON as error:
            problems.append(f"line {number}: not valid JSON ({error.reason})")
            continue
        parsed = question_from_record(record, number)
        if isinstance(parsed, str):
            problems.append(f"line {number}: {parsed}")
        elif parsed.id in first_line_of:
            first = first_line_of[parsed.id]
            problems.append(f"line {number}: duplicate id {parsed.id!r} (first on line {first})")
        else:
            first_line_of[parsed.id] = number
            questions.append(parsed)
    return questions, problems


def question_from_record(record: Any, line: int) -> EvalQuestion | str:
    """The question on one line, or what is wrong with it."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if "question" not in record:
        return "missing `question`"
    question = record["question"]
    if not isinstance(question, str) or not question.strip():
        return "`question` must be a non-empty string"
    try:
        answers = _answers(record)
        answerable = _optional(record, "answerable", bool, True)
        article_ids = _filled_strings(record, "article_ids") + _filled_strings(record, "article_id")
        fields = {
            "evidence": _filled_strings(record, "evidence"),
            "choices": _choices(record),
            "type": _optional(record, "type", str, None),
            "date": _date(record),
            "id": _id(record, line),
        }
    except ValueError as error:
        return str(error)
    if answerable and not answers:
        return "an answerable question needs `answers` (or set `answerable` to false)"
    if not answerable and answers:
        return "`answerable` is false but `answers` are given"
    labels = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in record.items()
        if key not in QUESTION_FIELDS and isinstance(value, str | int | float | bool)
    }
    return EvalQuestion(
        line=line,
        question=question.strip(),
        answers=answers,
        answerable=answerable,
        article_ids=tuple(dict.fromkeys(article_ids)),
        labels=labels,
        **fields,
    )


def _answers(record: dict[str, Any]) -> tuple[str, ...]:
    # `answer` is checked even beside `answers`, which it then gives way to.
    single = _optional(record, "answer", str, "")
    answers = _strings(record, "answers") if "answers" in record else (single,)
    return tuple(answer for answer in answers if answer.strip())


def _strings(record: dict[str, Any], key: str) -> tuple[str, ...]:
    """A string or list of strings field as a tuple; absent or null is empty."""
    value = record.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError(f"`{key}` must be a string or a list of strings")


def _filled_strings(record: dict[str, Any], key: str) -> tuple[str, ...]:
    """As `_strings`, refusing blanks: an empty id names no article, and empty evidence would
    make a question count as having evidence that no passage can hold."""
    values = _strings(record, key)
    if not all(value.strip() for value in values):
        raise ValueError(f"`{key}` must not hold an empty string")
    return values


def _choices(record: dict[str, Any]) -> tuple[str, ...]:
    """The options of a multiple-choice question; one string is no list of options."""
    value = record.get("choices")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("`choices` must be a list of strings")
    if not all(item.strip() for item in value):
        raise ValueError("`choices` must not hold an empty string")
    return tuple(value)


def _optional(record: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = record.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ValueError(f"`{key}` must be {'true or false' if kind is bool else 'a string'}")
    return value


def _date(record: dict[str, Any]) -> str | None:
    value = _optional(record, "date", str, None)
    if value is None:
        return None
    try:
        return parse_iso_date(value)
    except ValueError as error:
        raise ValueError(f"invalid `date`: {error}") from None


def _id(record: dict[str, Any], line: int) -> str:
    value = record.get("id")
    if value is None:
        return f"line-{line}"
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ValueError("`id` must be a non-empty string or an integer")
    return str(value)
