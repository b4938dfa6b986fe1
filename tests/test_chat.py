import io
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from rich.console import Console

from qa.answering import Answer, Assistant
from qa.chat.condense import condense_prompt
from qa.chat.repl import interact, read_lines
from qa.chat.rules import condense_with_rules, needs_context
from qa.chat.session import MEMORY_TURNS, Chat
from qa.settings import get_settings
from qa.types import Turn
from tests.servers import free_port

SPECIAL_REPRESENTATIVE = "Who is the U.S. special representative for Ukraine?"
WHEN_MOSCOW = "Lavrov didn't say when Volker, a former NATO ambassador, would go to Moscow."
LAST_MONTH = "Last month, Volker paid his first visit as special representative"


def consoles() -> tuple[Console, Console]:
    return (
        Console(file=io.StringIO(), width=200, highlight=False),
        Console(file=io.StringIO(), width=200, highlight=False),
    )


def text_of(console: Console) -> str:
    return console.file.getvalue()


def turn(question: str, answer: str) -> Turn:
    return Turn(question, question, Answer(question, answer, [], [], False, "extractive"))


@pytest.fixture
def chat(seeded):
    return Chat(Assistant.open(get_settings()))


def test_follow_ups_in_a_piped_session_are_searched_after_the_question_before_them(seeded):
    session = f"{SPECIAL_REPRESENTATIVE}\nWhen will he go to Moscow?\nWhere did he go last month?\n"
    result = seeded("chat", input=session)
    assert result.exit_code == 0, result.output
    assert f"searched: {SPECIAL_REPRESENTATIVE} When will he go to Moscow?\n" in result.stdout
    assert "answering: When will Kurt Volker go to Moscow?\n" in result.stdout
    # The question before is the previous follow-up as the rules made it stand alone.
    previous = "When will Kurt Volker go to Moscow?"
    assert f"searched: {previous} Where did he go last month?\n" in result.stdout
    second, third = result.stdout.split("qa> ")[2:4]
    assert WHEN_MOSCOW in second and "[1]" in second
    assert LAST_MONTH in third
    # Asked without the conversation, the last follow-up finds nothing to quote.
    alone = seeded("ask", "Where did he go last month?")
    assert LAST_MONTH not in alone.stdout


def test_envoy_follow_up_becomes_standalone_and_retrieves_the_moscow_passage(chat):
    chat.ask("Who is the U.S. envoy for Ukraine negotiations?").answer()
    answer = chat.ask("When did he go there?").answer()
    assert answer.question == "When did he go there?"
    assert (
        answer.searched == "Who is the U.S. envoy for Ukraine negotiations? When did he go there?"
    )
    answered = chat.turns[-1].standalone
    assert answered == "When did the U.S. envoy for Ukraine negotiations go to Moscow?"
    assert any(WHEN_MOSCOW in passage.text for passage in answer.passages)


def test_follow_up_that_already_stands_alone_is_searched_as_typed(chat):
    chat.ask("Where did Lavrov and Tillerson meet?").answer()
    for question in ("What did Lavrov say he explained to Tillerson?", "Is there an alternative?"):
        assert chat.ask(question).answer().searched == question
    follow_up = chat.ask("What did they agree to?").answer()
    assert follow_up.searched == "Is there an alternative? What did they agree to?"
    assert chat.turns[-1].standalone == "What did Lavrov and Tillerson agree to?"


@pytest.mark.parametrize(
    ("question", "dependent"),
    [
        ("When did he go there?", True),
        ("What did they agree to?", True),
        ("Who signed it?", True),
        ("Why?", True),
        ("What about Syria?", True),
        ("When will Kurt Volker go to Moscow?", False),
        ("What did Lavrov say he explained to Tillerson?", False),
        ("Is there an alternative to dialogue?", False),
        ("Is it true that Volker visited Ukraine?", False),
        ("Who met in the Philippines and what happened there?", False),
    ],
)
def test_only_questions_that_point_back_need_the_conversation(question, dependent):
    assert needs_context(question) is dependent


def test_rules_resolve_pronouns_to_what_the_last_turns_named():
    turns = [
        turn("Where did Lavrov and Tillerson meet?", "They met in the Philippines. [1]"),
        turn("When was the bill passed?", "Trump signed the bill last week. [1]"),
    ]
    assert condense_with_rules(turns, "What happened there?") == (
        "What happened in the Philippines?"
    )
    assert condense_with_rules(turns, "What did they agree to?") == (
        "What did Lavrov and Tillerson agree to?"
    )
    assert condense_with_rules(turns, "Who signed it?") == "Who signed the bill?"
    who = [*turns, turn("Who signed the bill?", "Trump signed the bill last week. [1]")]
    assert condense_with_rules(who, "What did he call it?") == "What did Trump call the bill?"
    # Nothing to point at: the last question's words travel along instead.
    assert condense_with_rules(turns[:1], "Why?") == "Why? (Lavrov Tillerson meet)"


class RewritingAnswerer:
    """The extractive answerer plus a language model's `complete`, which replies as told."""

    def __init__(self, answerer, reply: str) -> None:
        self.answerer, self.reply, self.prompts = answerer, reply, []
        self.name, self.model = "rewriting", "test"

    def answer(self, question, passages, **options):
        return self.answerer.answer(question, passages, **options)

    def complete(self, system: str, user: str) -> str:
        self.prompts.append((system, user))
        return self.reply


def test_with_a_language_model_the_rewrite_uses_the_condense_prompt(chat):
    model = RewritingAnswerer(
        chat.assistant.answerer, "User: When will Kurt Volker go to Moscow?\n"
    )
    chat.assistant = replace(chat.assistant, answerer=model)
    chat.ask(SPECIAL_REPRESENTATIVE).answer()
    assert model.prompts == []  # nothing to rewrite in a first question
    answer = chat.ask("When will he go there?").answer()
    assert chat.turns[-1].standalone == "When will Kurt Volker go to Moscow?"
    assert answer.searched == f"{SPECIAL_REPRESENTATIVE} When will he go there?"
    assert any(WHEN_MOSCOW in passage.text for passage in answer.passages)
    system, user = model.prompts[0]
    assert "understood without the conversation" in system and "{" not in system + user
    assert f"User: {SPECIAL_REPRESENTATIVE}" in user and "Assistant: Word that" in user
    assert user.rstrip().endswith("Rewritten question:") and "When will he go there?" in user
    standalone = chat.ask("Where did Lavrov and Tillerson meet?").answer()
    assert standalone.searched.startswith("Where did Lavrov")
    assert len(model.prompts) == 1  # a question that stands alone is not sent for rewriting


def test_a_model_reply_that_drops_the_question_gives_way_to_the_rules(chat):
    # What SmolLM2-135M replied to this conversation.
    drifted = "The U.S. special representative for Ukraine is the Russian President."
    chat.assistant = replace(
        chat.assistant, answerer=RewritingAnswerer(chat.assistant.answerer, drifted)
    )
    chat.ask(SPECIAL_REPRESENTATIVE).answer()
    chat.ask("When will he go to Moscow?").answer()
    assert chat.turns[-1].standalone == "When will Kurt Volker go to Moscow?"


def test_memory_keeps_only_the_last_turns_and_the_prompt_holds_only_those(chat):
    questions = [f"Who is Kurt Volker? ({n})" for n in range(MEMORY_TURNS + 2)]
    for question in questions:
        chat.ask(question).answer()
    assert len(chat.turns) == MEMORY_TURNS
    system, user = condense_prompt(chat.turns, "When will he go there?")
    assert "{" not in system + user
    assert questions[-1] in user and "When will he go there?" in user
    assert questions[0] not in user and questions[1] not in user
    assert user.count("User: ") == MEMORY_TURNS


def test_slash_commands_change_retrieval_and_show_sources(seeded):
    session = "\n".join(
        [
            "/help",
            "/k 2",
            SPECIAL_REPRESENTATIVE,
            "/sources",
            "/open 1",
            "/open 9",
            "/k many",
            "/since 2017-08-07",
            "Who is Kurt Volker?",
            "/since off",
            "/until 2017-08-06",
            "/since 2017-08-06",
            "When will he go to Moscow?",
            "/reset",
            "When will he go to Moscow?",
            "/frobnicate",
            "/sourse",
            "/exit",
            "Who is Kurt Volker?",
        ]
    )
    result = seeded("chat", input=session + "\n")
    assert result.exit_code == 0, result.output
    blocks = dict(
        block.split("\n", 1) for block in result.stdout.split("qa> ")[1:] if "\n" in block
    )
    assert "/sources" in blocks["/help"] and "/since DATE" in blocks["/help"]
    assert "#2 " in blocks["/sources"] and "#3 " not in blocks["/sources"]
    assert "Kurt Volker" in blocks["/sources"]
    # /open shows the article around the quote, beyond the quoted sentence.
    assert "Word that U.S. special representative Kurt Volker" in blocks["/open 1"]
    assert "lethal weaponry" in blocks["/open 1"]
    assert "Usage: /open N" in blocks["/open 9"]
    assert "Usage: /k N" in blocks["/k many"]
    assert "The articles do not say." in blocks["Who is Kurt Volker?"]
    assert "no passage matched" in blocks["Who is Kurt Volker?"]
    assert "2017-08-06 to 2017-08-06" in blocks["/since 2017-08-06"]
    assert WHEN_MOSCOW in blocks["When will he go to Moscow?"]
    assert "Conversation cleared" in blocks["/reset"]
    assert (
        "Unknown command /frobnicate" in blocks["/frobnicate"] and "/help" in blocks["/frobnicate"]
    )
    assert "Did you mean /sources?" in blocks["/sourse"]
    # /exit leaves: the question after it is never asked.
    assert result.stdout.count("qa> Who is Kurt Volker?") == 1
    assert result.stderr == ""


def test_after_reset_a_follow_up_is_not_rewritten(seeded):
    session = f"{SPECIAL_REPRESENTATIVE}\n/reset\nWhen will he go to Moscow?\n"
    result = seeded("chat", input=session)
    assert result.exit_code == 0
    assert "searched:" not in result.stdout


def test_a_failed_turn_prints_one_line_and_the_session_goes_on(chat):
    out, err = consoles()

    def lines():
        yield SPECIAL_REPRESENTATIVE
        chat.assistant.store.reset()  # the collection disappears while the chat is open
        yield "When will he go to Moscow?"
        yield "/k 3"

    assert read_lines(chat, lines(), out, err) == 1
    errors = text_of(err).strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error:")
    assert "Traceback" not in text_of(err)
    assert "Retrieving 3 passages per question." in text_of(out)


def test_server_that_does_not_answer_fails_the_turn_not_the_session(seeded):
    pytest.importorskip("qa.llm.answerer")
    closed = free_port()
    session = f"{SPECIAL_REPRESENTATIVE}\n/k 3\n/help\n"
    result = seeded(
        "chat", "--llm", "openai", "--base-url", f"http://127.0.0.1:{closed}/v1", input=session
    )
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert "Retrieving 3 passages per question." in result.stdout
    assert "/sources" in result.stdout


def test_interactive_prompt_answers_follow_ups_and_writes_history(chat, tmp_path):
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    history = tmp_path / "data" / "chat_history"
    out, err = consoles()
    with create_pipe_input() as keys:
        keys.send_text(f"{SPECIAL_REPRESENTATIVE}\r")
        keys.send_text("When will he go to Moscow?\r")
        keys.send_text("half a question\x03")  # Ctrl-C drops the line and keeps the session
        keys.send_text("/k 3\r")
        keys.send_text("\x04")  # Ctrl-D leaves
        interact(chat, out, err, history, input=keys, output=DummyOutput())
    shown = text_of(out)
    assert f"searched: {SPECIAL_REPRESENTATIVE} When will he go to Moscow?" in shown
    assert WHEN_MOSCOW in shown
    assert "Retrieving 3 passages per question." in shown
    assert chat.k == 3
    saved = history.read_text()
    assert SPECIAL_REPRESENTATIVE in saved and "/k 3" in saved
    assert "half a question" not in saved


def test_qa_chat_reads_questions_from_a_pipe_and_exits_at_the_end(seeded, tmp_path):
    session = f"{SPECIAL_REPRESENTATIVE}\nWhere did he go last month?\n"
    process = subprocess.run(
        [sys.executable, "-m", "qa", "chat"],
        input=session,
        capture_output=True,
        text=True,
        env={**os.environ, "QA_HOME": os.environ["QA_HOME"]},
        timeout=600,
    )
    assert process.returncode == 0, process.stderr
    assert f"searched: {SPECIAL_REPRESENTATIVE} Where did he go last month?" in process.stdout
    assert LAST_MONTH in process.stdout
    # Piped sessions leave the history of interactive ones alone.
    assert not (tmp_path / "home" / "chat_history").exists()
