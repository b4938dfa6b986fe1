"""However a command fails, the user sees one line and an exit code, never a traceback."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import KREMLIN_QUESTION, SEEDS


def one_line(result, code):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("ask", "x", "--k", "0"),
        ("ask", "x", "--k", "many"),
        ("ask",),
        ("ask", "x", "--no-such-option"),
        ("no-such-command",),
        ("eval", "tests.jsonl", "--min-accuracy", "2"),
    ],
)
def test_a_usage_error_is_one_line_with_where_to_look(run, args):
    line = one_line(run(*args), 2)
    assert "--help" in line


def test_an_unexpected_failure_is_one_line_naming_the_command(run, monkeypatch):
    from qa import retrieval

    def broken(*args, **kwargs):
        raise RuntimeError("the index went\nsideways")

    monkeypatch.setattr(retrieval.Retriever, "open", broken)
    line = one_line(run("ask", KREMLIN_QUESTION), 1)
    assert "qa ask failed unexpectedly" in line and "sideways" in line
    assert "QA_DEBUG=1" in line


def test_with_qa_debug_an_unexpected_failure_shows_its_traceback(tmp_path):
    code = (
        "import sys; from qa import retrieval, cli\n"
        "def broken(*a, **k): raise RuntimeError('sideways')\n"
        "retrieval.Retriever.open = broken\n"
        "sys.argv = ['qa', 'ask', 'Why?']; cli.main()\n"
    )
    env = {**os.environ, "QA_HOME": str(tmp_path), "QA_DEBUG": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: sideways" in result.stderr


def test_an_empty_qa_home_means_the_default_not_the_current_directory(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_HOME", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert run("ingest", SEEDS).exit_code == 0
    assert not (tmp_path / "chroma").exists()
    assert (tmp_path / "xdg" / "qa" / "chroma").is_dir()


@pytest.mark.parametrize("variable", ["QA_HOME", "QA_MODEL_CACHE"])
def test_a_data_folder_that_is_a_file_is_named_as_such(run, tmp_path, monkeypatch, variable):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    monkeypatch.setenv(variable, str(a_file))
    line = one_line(run("ask", KREMLIN_QUESTION), 2)
    assert "not a directory" in line


def test_a_model_cache_under_a_file_is_one_line(tmp_path):
    # A new process: this one holds the model in memory already.
    env = {**os.environ, "QA_HOME": str(tmp_path), "QA_MODEL_CACHE": "/dev/null/models"}
    result = subprocess.run(
        [sys.executable, "-m", "qa", "ingest", str(SEEDS)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "QA_MODEL_CACHE" in line and "Not a directory" in line


@pytest.mark.parametrize("value", ["20220101", "2022-W01-1", "2022-1-1", "yesterday"])
def test_as_of_takes_only_yyyy_mm_dd(seeded, value):
    line = one_line(seeded("ask", KREMLIN_QUESTION, "--as-of", value), 2)
    assert "YYYY-MM-DD" in line


def test_many_skips_of_one_kind_are_counted_not_listed(run, tmp_path):
    corpus = tmp_path / "wire.jsonl"
    story = {"id": "same", "title": "Wire copy", "text": "The council met on Monday."}
    corpus.write_text("".join(json.dumps(story) + "\n" for _ in range(40)))
    result = run("ingest", corpus)
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.stderr.splitlines() if line.startswith("  skipped")]
    assert len(skipped) == 4, result.stderr
    assert "36 more" in skipped[-1] and "duplicate article id" in skipped[-1]
    listed = json.loads(run("ingest", corpus, "--json").stdout)["skipped"]
    assert len(listed) == 39
