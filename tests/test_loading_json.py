import json

import pytest

from qa.loading import load_articles

DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a": ' * 100_000 + "1" + "}" * 100_000
HUGE_INT = "1" * 100_000


def article_line(article_id: str, text: str) -> str:
    return json.dumps({"id": article_id, "text": text})


def test_ingest_skips_a_too_deep_json_lines_record_by_line_and_keeps_the_others(run, tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    corpus = folder / "corpus.jsonl"
    good_first = article_line("first", "The council approved the budget on Monday.")
    good_last = article_line("last", "The bridge reopened after repairs.")
    corpus.write_text(f"{good_first}\n{DEEP_LIST}\n{good_last}\n")

    result = run("ingest", folder, "--json")
    assert result.exit_code == 0, result.output
    skipped = json.loads(result.stdout)["skipped"]
    assert skipped == [
        {
            "location": f"{corpus}:2",
            "reason": "malformed JSON line: nested more than 100 levels deep",
        }
    ]
    listed = json.loads(run("sources", "--json").stdout)
    assert sorted(article["id"] for article in listed) == ["first", "last"]


@pytest.mark.parametrize("deep", [DEEP_LIST, DEEP_OBJECT, "[" * 101 + "]" * 101])
def test_a_too_deep_json_file_is_one_skipped_line(tmp_path, deep):
    path = tmp_path / "deep.json"
    path.write_text(deep)
    result = load_articles([path])
    assert result.articles == []
    assert [(s.location, s.reason) for s in result.skipped] == [
        (str(path), "malformed JSON: nested more than 100 levels deep")
    ]


def test_metadata_nested_as_deep_as_allowed_is_kept(tmp_path):
    path = tmp_path / "nested.jsonl"
    nested = "[" * 99 + "]" * 99
    path.write_text(f'{{"id": "a", "text": "Floods hit the valley.", "tags": {nested}}}\n')
    (article,) = load_articles([path]).articles
    assert article.extra["tags"] == json.dumps(json.loads(nested))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (HUGE_INT, "a number has too many digits"),
        ("1e999999", "a number is out of range"),
        ("-1e999999", "a number is out of range"),
        ("NaN", "NaN is not a JSON value"),
        ("Infinity", "Infinity is not a JSON value"),
        ('"\\ud800"', "a string holds half of a UTF-16 surrogate pair"),
    ],
)
def test_values_python_cannot_hold_skip_their_record_with_its_line(tmp_path, value, reason):
    path = tmp_path / "corpus.jsonl"
    good = article_line("good", "Prices rose in March.")
    path.write_text(f'{good}\n{{"id": "bad", "text": "Rain.", "views": {value}}}\n')
    result = load_articles([path])
    assert [a.id for a in result.articles] == ["good"]
    assert [(s.location, s.reason) for s in result.skipped] == [
        (f"{path}:2", f"malformed JSON line: {reason}")
    ]


def test_a_json_file_with_a_huge_number_is_skipped_not_raised(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(f'{{"id": "a", "text": "Rain.", "views": {HUGE_INT}}}')
    result = load_articles([path])
    assert [(s.location, s.reason) for s in result.skipped] == [
        (str(path), "malformed JSON: a number has too many digits")
    ]


def test_a_line_separator_inside_a_json_lines_string_does_not_split_the_record(tmp_path):
    path = tmp_path / "corpus.jsonl"
    text = "First paragraph.\u2028Second paragraph.\x85Third."
    path.write_text(json.dumps({"id": "a", "text": text}, ensure_ascii=False) + "\r\n")
    result = load_articles([path])
    assert result.skipped == []
    assert [a.text for a in result.articles] == [text]
