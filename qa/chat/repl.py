"""The `qa chat` terminal loop: prompt_toolkit at a terminal, plain lines from a pipe."""

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from qa.chat.session import COMMANDS, Chat, Excerpt, Help, Leave, Notice, Sources, is_command
from qa.errors import QAError
from qa.rendering import (
    byline,
    own_line_for_errors,
    print_stream,
    render_chat_answer,
    render_chat_help,
    render_chat_welcome,
    render_error,
    render_excerpt,
    render_notice,
    render_passages,
    render_searched,
    stderr_console,
    stdout_console,
)
from qa.settings import Settings

PROMPT = "qa> "
HISTORY_FILE = "chat_history"
# What one line did to the session.
CONTINUE, FAILED, LEAVE = "continue", "failed", "leave"


def run_chat(settings: Settings) -> int:
    """Talk until Ctrl-D, /exit or the end of piped input; returns the exit code."""
    from qa.answerers import passed_over
    from qa.workspace import Workspace

    chat = Chat(Workspace(settings).assistant)
    out, err = stdout_console(), stderr_console()
    for note in passed_over(settings):
        render_notice(err, note, warning=True)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return read_lines(chat, sys.stdin, out, err)
    with err.status("[dim]Loading the embedding model…[/]", spinner="dots"):
        chat.load_models()
    render_chat_welcome(err, settings.store.collection, answerer_label(chat.assistant.answerer))
    interact(chat, out, err, settings.store.data_dir / HISTORY_FILE)
    return 0


def interact(
    chat: Chat,
    out: Console,
    err: Console,
    history_path: Path,
    *,
    input: Any = None,
    output: Any = None,
) -> None:
    """The interactive loop: line editing, history, Ctrl-C cancels, Ctrl-D leaves."""
    session = prompt_session(chat, history_path, input, output)
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt drops the line, as in a shell.
        except EOFError:
            return
        try:
            if respond(chat, line, out, err, live=True) == LEAVE:
                return
        except KeyboardInterrupt:
            out.print()
            render_notice(err, "Cancelled.", warning=True)


def read_lines(chat: Chat, lines: Iterable[str], out: Console, err: Console) -> int:
    """One question or command a line; 1 when any of them failed, so scripts can tell."""
    failed = False
    for line in lines:
        if not line.strip():
            continue
        out.print(f"[bold]{PROMPT}[/]{escape(line.strip())}")
        outcome = respond(chat, line, out, err, live=False)
        if outcome == LEAVE:
            break
        failed = failed or outcome == FAILED
    return 1 if failed else 0


def respond(chat: Chat, line: str, out: Console, err: Console, live: bool) -> str:
    """Run one line; a failed turn prints one line and the session goes on."""
    line = line.strip()
    if not line:
        return CONTINUE
    try:
        if is_command(line):
            reply = chat.command(line)
            if isinstance(reply, Leave):
                return LEAVE
            show_reply(out, reply)
        else:
            answer_turn(chat, line, out, live)
    except QAError as error:
        render_error(err, str(error))
        return FAILED
    return CONTINUE


def answer_turn(chat: Chat, question: str, out: Console, live: bool) -> None:
    """Ask, showing what was searched, streaming the answer at a terminal, then its sources."""
    streamed: list[str] = []
    status = out.status("[dim]Searching…[/]", spinner="dots") if live else None

    def on_searched(searched: str, answering: str) -> None:
        if searched != question:
            render_searched(out, searched, answering)

    if status:
        status.start()
    try:
        with own_line_for_errors(out, streamed):
            reply = chat.ask(question, on_searched=on_searched, stream=live)
            if status:
                print_stream(out, reply, streamed, before_first=status.stop)
            answer = reply.answer()
    finally:
        if status:
            status.stop()
    render_chat_answer(out, answer, streamed="".join(streamed))
    if not answer.passages and (chat.since or chat.until):
        render_notice(out, f"{chat.date_window()}: no passage matched.", warning=True)


def show_reply(out: Console, reply: Notice | Help | Sources | Excerpt) -> None:
    match reply:
        case Notice():
            render_notice(out, reply.text, reply.warning)
        case Help():
            render_chat_help(out, reply.commands)
        case Sources():
            render_passages(out, reply.passages)
        case Excerpt():
            render_excerpt(out, reply.citation, reply.article.text, reply.start, reply.end)


def prompt_session(chat: Chat, history_path: Path, input: Any, output: Any) -> Any:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory

    history_path.parent.mkdir(parents=True, exist_ok=True)
    return PromptSession(
        history=FileHistory(str(history_path)),
        completer=WordCompleter([name for name, _, _ in COMMANDS], WORD=True),
        complete_while_typing=True,
        bottom_toolbar=lambda: toolbar(chat),
        input=input,
        output=output,
    )


def toolbar(chat: Chat) -> str:
    dates = "any date"
    if chat.since or chat.until:
        dates = f"{chat.since or '…'} to {chat.until or '…'}"
    return (
        f" {chat.assistant.settings.store.collection} · k={chat.k} · {dates} · "
        f"{answerer_label(chat.assistant.answerer)} · /help · Ctrl-D leaves"
    )


def answerer_label(answerer: Any) -> str:
    return byline(answerer.name, answerer.model)
