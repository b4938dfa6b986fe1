"""Escape sequences in articles never reach the terminal."""

import io
import json

import pytest

from qa.rendering import SafeConsole, render_answer
from qa.terminal_text import terminal_safe

HOSTILE = "\x1b]0;OWNED\x07\x1b[2J\x1b[31mred\x1b[0m\rover\x9b2J\u202eevil\x08"


def test_control_characters_are_removed_and_text_and_layout_kept():
    assert terminal_safe(f"Ferry {HOSTILE} line\n\ttabbed") == (
        "Ferry ]0;OWNED[2J[31mred[0mover2Jevil line\n\ttabbed"
    )


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_an_article_with_escape_sequences_is_shown_without_them(run, tmp_path, suffix):
    text = f"The harbour ferry {HOSTILE} sails at noon on Mondays."
    article = tmp_path / f"ferry{suffix}"
    if suffix == ".json":
        article.write_text(json.dumps({"id": "ferry", "title": f"Ferry {HOSTILE}", "text": text}))
    else:
        article.write_text(f"Ferry {HOSTILE}\n\n{text}\n")
    assert run("ingest", article).exit_code == 0
    for args in (("ask", "When does the harbour ferry sail?"), ("sources",)):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert "ferry" in result.stdout.lower()
        assert not set(result.stdout) & set("\x1b\x07\r\x08\x9b\u202e"), repr(result.stdout)
    # Scripts get the text as stored, escaped by JSON.
    listed = json.loads(run("sources", "--json").stdout)
    assert "\x1b]0;OWNED" in listed[0]["title"]


def test_styles_still_reach_a_terminal_but_text_cannot_add_its_own():
    from qa.types import Answer

    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=True, width=100)
    answer = Answer(
        question="Why?", text=f"An answer {HOSTILE}", citations=[], passages=[],
        abstained=False, answerer="extractive",
    )  # fmt: skip
    render_answer(console, answer)
    shown = out.getvalue()
    assert "\x1b[" in shown  # Rich's own colours
    assert "OWNED\x07" not in shown and "\x1b]0;" not in shown and "\x1b[2J" not in shown
