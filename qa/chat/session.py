"""A conversation over the articles: follow-ups become standalone questions; slash commands."""

import difflib
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from datetime import date

from qa.answering import Assistant
from qa.chat.condense import search_text, standalone_question
from qa.loading import Article
from qa.types import Answer, AnswerStream, Citation, Passage, Turn

# Only the last few turns are remembered, so the rewrite prompt never grows without limit.
MEMORY_TURNS = 4
EXCERPT_CONTEXT_CHARS = 600

COMMANDS = (
    ("/help", "", "list these commands"),
    ("/sources", "", "show the passages behind the last answer, in full"),
    ("/open", "N", "show the article around citation [N] of the last answer"),
    ("/k", "N", "retrieve N passages per question"),
    ("/since", "DATE|off", "only use articles dated on or after DATE (YYYY-MM-DD)"),
    ("/until", "DATE|off", "only use articles dated on or before DATE"),
    ("/reset", "", "forget the conversation; the next question starts fresh"),
    ("/exit", "", "leave (Ctrl-D leaves too)"),
)
ALIASES = {"/quit": "/exit", "/?": "/help"}


@dataclass(frozen=True)
class Notice:
    """A short message about a command; `warning` when the command could not be done."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class Help:
    commands: tuple[tuple[str, str, str], ...] = COMMANDS


@dataclass(frozen=True)
class Sources:
    passages: list[Passage]


@dataclass(frozen=True)
class Excerpt:
    """Citation `[marker]` shown in its article: `article.text[start:end]` holds the quote."""

    citation: Citation
    article: Article
    start: int
    end: int


@dataclass(frozen=True)
class Leave:
    pass


CommandReply = Notice | Help | Sources | Excerpt | Leave


class Chat:
    """One conversation: a bounded memory of turns and the retrieval settings commands change."""

    def __init__(self, assistant: Assistant, memory: int = MEMORY_TURNS) -> None:
        self.assistant = assistant
        self.k = assistant.settings.k
        self.since: str | None = None
        self.until: str | None = None
        self.turns: deque[Turn] = deque(maxlen=memory)

    def load_models(self) -> None:
        """Load the local embedding model and the keyword index before the first question.

        A Ctrl-C during a first import can leave a module half-imported and every later
        question failing; at startup it just ends the program.
        """
        if self.assistant.settings.embeddings.provider == "local":
            self.assistant.embedder.embed_query("warm-up")
        if self.assistant.retriever.mode != "dense":
            self.assistant.retriever.keyword_index()

    def ask(
        self,
        question: str,
        *,
        on_searched: Callable[[str, str], None] | None = None,
        stream: bool = True,
    ) -> AnswerStream:
        """One turn: rewrite into a standalone question, retrieve, answer; the turn is
        remembered once its answer is read. `on_searched` hears what was searched, and the
        standalone question, before the answer starts."""
        return AnswerStream(self._turn(question, on_searched, stream))

    def _turn(
        self, question: str, on_searched: Callable[[str, str], None] | None, stream: bool
    ) -> Generator[str, None, Answer]:
        standalone = self.standalone_question(question)
        searched = search_text(list(self.turns), question, standalone)
        if on_searched:
            on_searched(searched, standalone)
        answering = self.assistant.ask(
            standalone,
            k=self.k,
            as_of=self.until,
            since=self.since,
            search=searched,
            stream=stream,
        )
        yield from answering
        answer = replace(answering.answer(), question=question, searched=searched)
        self.turns.append(Turn(question, standalone, answer))
        return answer

    def standalone_question(self, question: str) -> str:
        """`question` as it reads without the conversation; unchanged when it already does."""
        return standalone_question(list(self.turns), question, self.assistant.answerer.complete)

    def command(self, line: str) -> CommandReply:
        """Carry out a slash command; problems come back as warnings, never as errors."""
        name, argument = parse_command(line)
        handlers: dict[str, Callable[[str], CommandReply]] = {
            "/help": lambda _: Help(),
            "/sources": self._sources,
            "/open": self._open,
            "/k": self._set_k,
            "/since": lambda arg: self._set_date("since", arg),
            "/until": lambda arg: self._set_date("until", arg),
            "/reset": self._reset,
            "/exit": lambda _: Leave(),
        }
        handler = handlers.get(ALIASES.get(name, name))
        return handler(argument) if handler else unknown_command(name)

    @property
    def last_answer(self) -> Answer | None:
        return self.turns[-1].answer if self.turns else None

    def _sources(self, _: str) -> CommandReply:
        if self.last_answer is None:
            return Notice("No answer yet: ask a question first.", warning=True)
        if not self.last_answer.passages:
            return Notice("The last question retrieved no passages.", warning=True)
        return Sources(self.last_answer.passages)

    def _open(self, argument: str) -> CommandReply:
        answer = self.last_answer
        if answer is None or not answer.citations:
            return Notice("The last answer has no citations to open.", warning=True)
        markers = [citation.marker for citation in answer.citations]
        wanted = argument.strip().strip("[]")
        if not wanted.isdigit() or int(wanted) not in markers:
            choices = ", ".join(f"[{marker}]" for marker in markers)
            return Notice(f"Usage: /open N, where N is one of {choices}.", warning=True)
        citation = answer.citations[markers.index(int(wanted))]
        article = self.assistant.store.article(citation.article_id)
        start, end = excerpt_bounds(article.text, citation.start, citation.end)
        return Excerpt(citation, article, start, end)

    def _set_k(self, argument: str) -> CommandReply:
        if not argument:
            return Notice(f"Retrieving {self.k} passages per question.")
        if not argument.isdigit() or not 1 <= int(argument) <= 100:
            return Notice("Usage: /k N, with N from 1 to 100.", warning=True)
        self.k = int(argument)
        return Notice(f"Retrieving {self.k} passages per question.")

    def _set_date(self, bound: str, argument: str) -> CommandReply:
        if argument.lower() in ("off", "none", "clear"):
            setattr(self, bound, None)
        elif argument:
            try:
                setattr(self, bound, date.fromisoformat(argument).isoformat())
            except ValueError:
                return Notice(f"Usage: /{bound} YYYY-MM-DD, or /{bound} off.", warning=True)
        if self.since and self.until and self.since > self.until:
            return Notice(f"{self.date_window()}: no article can match.", warning=True)
        return Notice(self.date_window())

    def _reset(self, _: str) -> CommandReply:
        self.turns.clear()
        return Notice("Conversation cleared; the next question starts fresh.")

    def date_window(self) -> str:
        """The article dates in force, in words."""
        if self.since and self.until:
            return f"Using articles dated {self.since} to {self.until}"
        if self.since:
            return f"Using articles dated on or after {self.since}"
        if self.until:
            return f"Using articles dated on or before {self.until}"
        return "Using articles of any date"


def is_command(line: str) -> bool:
    return line.lstrip().startswith("/")


def parse_command(line: str) -> tuple[str, str]:
    """`/k 3` -> ("/k", "3"); the name is lower-cased."""
    name, _, argument = line.strip().partition(" ")
    return name.lower(), argument.strip()


def unknown_command(name: str) -> Notice:
    names = [command for command, _, _ in COMMANDS]
    close = difflib.get_close_matches(name, names, n=1)
    suggestion = f"Did you mean {close[0]}? " if close else ""
    return Notice(f"Unknown command {name}. {suggestion}Type /help for the list.", warning=True)


def excerpt_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The paragraphs around `text[start:end]`, cut at whitespace when they run long."""
    lo = paragraph_start(text, paragraph_start(text, start) - 1)
    hi = paragraph_end(text, paragraph_end(text, end) + 1)
    if start - lo > EXCERPT_CONTEXT_CHARS:
        lo = text.find(" ", start - EXCERPT_CONTEXT_CHARS, start) + 1 or start
    if hi - end > EXCERPT_CONTEXT_CHARS:
        cut = text.rfind(" ", end, end + EXCERPT_CONTEXT_CHARS)
        hi = cut if cut > end else end
    return lo, hi


def paragraph_start(text: str, position: int) -> int:
    if position <= 0:
        return 0
    found = text.rfind("\n\n", 0, position)
    return 0 if found < 0 else found + 2


def paragraph_end(text: str, position: int) -> int:
    if position >= len(text):
        return len(text)
    found = text.find("\n\n", position)
    return len(text) if found < 0 else found
