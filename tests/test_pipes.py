"""qa's output through a real pipe, as grep, cut, sort and wc -l see it, and on a terminal."""

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from qa.chat.session import COMMANDS
from qa.rendering import EVAL_METRICS

ESCAPE = "\x1b"
SGR = re.compile(r"\x1b\[([0-9;]*)m")
TERMINAL_COLUMNS = 100
ARTICLES = [
    {
        "id": "ferry",
        "title": "Harbor town opens solar ferry line after a decade of planning, with crossings "
        "every half hour from dawn to midnight",
        "date": "2024-05-02",
        "text": "The harbor town opened its solar ferry line on Thursday. The ferry carries 120 "
        "passengers and crosses the bay in 25 minutes. Officials said the line cost 14 million "
        "dollars.",
    },
    {
        "id": "bridge",
        "title": "Council\tvotes to rebuild the old stone bridge over the river Wye before the "
        "winter floods arrive in the valley",
        "date": "2024-05-03",
        "text": "The council voted on Monday to rebuild the old stone bridge over the river Wye. "
        "Work starts in June and should end before the winter floods. The bridge was built in "
        "1820.",
    },
    {
        "id": "orchard",
        "title": "Volunteers plant four hundred apple trees in the community orchard\non the "
        "hill above the railway station",
        "date": "2024-05-04",
        "text": "Volunteers planted four hundred apple trees in the community orchard on Saturday. "
        "The orchard's first harvest is expected in three years.",
    },
]
# How a title reads on one line: its tab or newline is a space.
ONE_LINE_TITLES = {
    "ferry": ARTICLES[0]["title"],
    "bridge": ARTICLES[1]["title"].replace("\t", " "),
    "orchard": ARTICLES[2]["title"].replace("\n", " "),
}
# A plain-text article: its id, the file's name, holds a tab; its first sentence is its title.
MARKET_FILE = "weekly\tmarket.txt"
MARKET_TEXT = (
    "date 2024-05-05\nThe weekly farmers market moves from the old car park to the riverside "
    "promenade in May. Stalls open at eight."
)
MARKET_TITLE = (
    "The weekly farmers market moves from the old car park to the riverside promenade in May."
)
SKIPPED_FILE = (
    "an-empty-file-whose-name-is-far-longer-than-eighty-characters-so-a-wrap-would-cut-it.txt"
)
QUESTIONS = [
    {
        "id": "ferry-passengers",
        "question": "How many passengers does the harbor town's new solar ferry carry\tacross "
        "the bay on each of its crossings?",
        "answers": ["120"],
        "type": "how_many",
        "article_ids": ["ferry"],
    },
    {
        "id": "bridge-built",
        "question": "When was the old stone bridge over the river Wye built?",
        "answers": ["1820"],
        "type": "when",
        "article_ids": ["bridge"],
    },
    {
        "id": "orchard-mayor",
        "question": "Who is the mayor of the town with the community orchard?",
        "answerable": False,
        "type": "who",
    },
]
FERRY_QUESTION = "How many passengers does the solar ferry carry?"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A data directory holding the articles, and what `qa ingest` printed into a pipe."""
    folder = tmp_path_factory.mktemp("pipes")
    corpus = folder / "corpus"
    corpus.mkdir()
    (corpus / "news.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ARTICLES))
    (corpus / MARKET_FILE).write_text(MARKET_TEXT)
    (corpus / SKIPPED_FILE).write_text("")
    env = plain_env(folder / "home")
    ingest = qa_in_pipe(env, "ingest", corpus)
    assert ingest.returncode == 0, ingest.stderr
    return folder, env, ingest


def plain_env(home, **extra):
    """The environment of a user's shell: no width, colour or terminal override of its own."""
    overrides = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("QA_", "OPENAI_")) and name not in overrides
    }
    return {**env, "QA_HOME": str(home), "TERM": "xterm-256color", **extra}


def qa_in_pipe(env, *args, input=None):
    """`qa ARGS | …`: stdout and stderr are pipes, not terminals."""
    return subprocess.run(
        [sys.executable, "-m", "qa", *map(str, args)],
        input=input,
        capture_output=True,
        stdin=None if input is not None else subprocess.DEVNULL,
        text=True,
        env=env,
        timeout=600,
    )


def qa_in_terminal(env, *args):
    """`qa ARGS` with stdout on a pseudo-terminal TERMINAL_COLUMNS wide; what it showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, TERMINAL_COLUMNS, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child has closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(leader)
    assert process.wait(timeout=600) == 0
    return shown.decode().replace("\r\n", "\n")


def lines_of(text):
    """The lines `grep -c .` counts."""
    return [line for line in text.split("\n") if line]


def tables_of(text):
    """The tab-separated blocks of a pipe's output, each a list of rows of fields."""
    blocks = [lines_of(block) for block in text.split("\n\n")]
    return [[line.split("\t") for line in block] for block in blocks if block]


def colours(text):
    """The SGR parameters in `text` that set a foreground or background colour."""
    found = []
    for params in SGR.findall(text):
        codes = [int(code) for code in params.split(";") if code]
        found += [c for c in codes if (30 <= c <= 49 and c not in (39, 49)) or 90 <= c <= 107]
    return found


def test_sources_in_a_pipe_is_one_line_per_article_under_one_header(store):
    _, env, _ = store
    result = qa_in_pipe(env, "sources")
    assert result.returncode == 0, result.stderr
    lines = lines_of(result.stdout)
    assert len(lines) == len(ARTICLES) + 1 + 1
    assert lines[0] == "id\ttitle\tdate\tchunks"
    rows = {fields[0]: fields for fields in (line.split("\t") for line in lines[1:])}
    assert rows == {
        **{
            article["id"]: [article["id"], ONE_LINE_TITLES[article["id"]], article["date"], "1"]
            for article in ARTICLES
        },
        "weekly market": ["weekly market", MARKET_TITLE, "2024-05-05", "1"],
    }
    for title in [*ONE_LINE_TITLES.values(), MARKET_TITLE]:
        assert len(title) > 80
        assert sum(title in line for line in lines) == 1
    assert ESCAPE not in result.stdout + result.stderr


def test_sources_through_grep_finds_a_long_title_whole(store):
    _, env, _ = store
    sources = qa_in_pipe(env, "sources")
    grep = subprocess.run(
        ["grep", "dawn to midnight"], input=sources.stdout, capture_output=True, text=True
    )
    (line,) = grep.stdout.splitlines()
    assert line.split("\t")[:2] == ["ferry", ONE_LINE_TITLES["ferry"]]


def test_json_output_keeps_the_text_as_stored(store):
    _, env, _ = store
    result = qa_in_pipe(env, "sources", "--json")
    records = {record["id"]: record for record in json.loads(result.stdout)}
    assert records["weekly\tmarket"]["title"] == MARKET_TITLE
    assert records["ferry"]["title"] == ONE_LINE_TITLES["ferry"]
    assert ESCAPE not in result.stdout


def test_eval_in_a_pipe_is_one_line_per_metric_and_its_summary_goes_to_stderr(store):
    folder, env, _ = store
    test_set = folder / "set.jsonl"
    test_set.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    report_file = folder / "report.json"
    result = qa_in_pipe(env, "eval", test_set, "--llm", "extractive", "--out", report_file)
    assert result.returncode == 0, result.stderr
    (table,) = tables_of(result.stdout)
    assert len(lines_of(result.stdout)) == len(table) == len(shown_metrics(report_file)) + 1
    header, *rows = table
    assert header[:4] == ["metric", "overall", "answerable", "unanswerable"]
    assert {"type=how_many", "type=when", "type=who"} <= set(header)
    assert all(len(row) == len(header) for row in rows)
    assert [row[0] for row in rows] == shown_metrics(report_file)
    metrics = dict((row[0], row[1:]) for row in rows)
    assert metrics["questions"][:3] == ["3", "2", "1"]
    assert str(test_set) in result.stderr and "3 questions" in result.stderr
    assert ESCAPE not in result.stdout + result.stderr


def test_eval_comparison_in_a_pipe_is_a_table_of_changes_and_one_of_flips(store):
    folder, env, _ = store
    test_set = folder / "set.jsonl"
    test_set.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    report_file = folder / "earlier.json"
    first = qa_in_pipe(env, "eval", test_set, "--llm", "extractive", "--out", report_file)
    assert first.returncode == 0, first.stderr
    # An earlier run that got the ferry question wrong.
    report = json.loads(report_file.read_text())
    (ferry,) = [row for row in report["questions"] if row["id"] == "ferry-passengers"]
    now = ferry["scores"]["outcome"]
    ferry["scores"]["outcome"] = "wrong" if now != "wrong" else "right"
    report["metrics"]["overall"]["accuracy"] = 0.25
    report_file.write_text(json.dumps(report))

    result = qa_in_pipe(env, "eval", test_set, "--llm", "extractive", "--compare", report_file)
    assert result.returncode == 0, result.stderr
    metrics, changes, flips = tables_of(result.stdout)
    assert metrics[0][0] == "metric"
    assert changes[0] == ["metric", "before", "after", "change"]
    accuracy = next(row for row in changes if row[0] == "accuracy")
    assert accuracy[1] == "0.250" and len(accuracy) == 4
    assert flips == [
        ["id", "before", "after", "question"],
        [
            "ferry-passengers",
            ferry["scores"]["outcome"],
            now,
            QUESTIONS[0]["question"].replace("\t", " "),
        ],
    ]
    assert len(QUESTIONS[0]["question"]) > 80
    assert ESCAPE not in result.stdout


def shown_metrics(report_file):
    """The labels of the metrics a report has a figure for, in the table's order."""
    metrics = json.loads(report_file.read_text())["metrics"]
    summaries = [metrics["overall"]] + [
        summary for labels in metrics["breakdowns"].values() for summary in labels.values()
    ]
    k = json.loads(report_file.read_text())["settings"]["k"]
    return [
        label.format(k=k)
        for key, label, _ in EVAL_METRICS
        if any(summary.get(key) is not None for summary in summaries)
    ]


def test_an_answer_in_a_pipe_keeps_each_citation_on_one_whole_line(store):
    _, env, _ = store
    result = qa_in_pipe(env, "ask", FERRY_QUESTION)
    assert result.returncode == 0, result.stderr
    lines = lines_of(result.stdout)
    assert "120 passengers" in lines[0] and "[1]" in lines[0]
    (citation,) = [line for line in lines if line.startswith("[1] ")]
    assert citation.startswith(f"[1] {ONE_LINE_TITLES['ferry']} 2024-05-02")
    assert any(line.startswith("    “") and line.endswith("”") for line in lines)
    assert lines[-1] == "answered by extractive"
    assert ESCAPE not in result.stdout


def test_ingest_in_a_pipe_reports_each_skipped_file_on_one_line(store):
    _, _, ingest = store
    (skipped,) = [line for line in lines_of(ingest.stderr) if "skipped" in line and ":" in line]
    assert SKIPPED_FILE in skipped and skipped.endswith(": empty file")
    assert lines_of(ingest.stderr)[0].startswith("4 added")
    assert ESCAPE not in ingest.stderr


def test_chat_help_in_a_pipe_is_one_line_per_command(store):
    _, env, _ = store
    result = qa_in_pipe(env, "chat", input="/help\n")
    assert result.returncode == 0, result.stderr
    help_lines = lines_of(result.stdout)[1:-1]
    assert help_lines[0] == "command\tdescription"
    commands = dict(line.split("\t") for line in help_lines[1:])
    assert commands == {f"{name} {arg}".strip(): text for name, arg, text in COMMANDS}
    assert commands["/since DATE|off"].endswith("(YYYY-MM-DD)")
    assert ESCAPE not in result.stdout


def test_a_terminal_gets_the_table_in_colour_unless_no_color_is_set(store):
    folder, env, _ = store
    shown = qa_in_terminal(env, "sources")
    assert ESCAPE in shown
    table = SGR.sub("", shown)
    assert "4 articles in 'default'" in table and "┃ id " in table and "\t" not in table
    # A long title is folded into its column, the table kept to the terminal's width.
    assert all(len(line) <= TERMINAL_COLUMNS for line in table.split("\n"))
    assert ONE_LINE_TITLES["ferry"] not in table and "midnight" in table

    answer = qa_in_terminal(env, "ask", FERRY_QUESTION)
    assert "120 passengers" in answer and colours(answer)
    plain = qa_in_terminal(plain_env(folder / "home", NO_COLOR="1"), "ask", FERRY_QUESTION)
    assert "120 passengers" in plain and "answered by extractive" in plain
    assert colours(plain) == []
