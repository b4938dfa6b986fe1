"""Answer with a chat model from numbered passages, then keep only the citations that check."""

import re
from collections.abc import Generator, Iterator

from qa.citations import NO_ANSWER, checked_answer
from qa.llm.clients import ChatModel, Messages
from qa.masking import mask_secrets, masked_stream
from qa.prompts import render_prompt
from qa.settings import Settings
from qa.types import Answer, AnswerStream, Passage

SYSTEM_TEMPLATE = "system.txt"
ANSWER_TEMPLATE = "answer.txt"
# An article must not be able to close its own passage and speak as the prompt.
PASSAGE_TAG = re.compile(r"</?\s*passages?\b[^>]*>", re.IGNORECASE)
ANY_TAG = re.compile(r"<[^>]*>")


class GenerativeAnswerer:
    """Asks a chat model to answer from numbered passages, then keeps only valid citations."""

    def __init__(self, chat: ChatModel, settings: Settings) -> None:
        self.chat = chat
        self.settings = settings
        self.name = chat.provider
        self.model: str | None = chat.model
        # Temperature and model are recorded with every eval run already.
        self.parameters: dict[str, float] | None = None

    def answer(
        self,
        question: str,
        passages: list[Passage],
        *,
        as_of: str | None = None,
        stream: bool = True,
    ) -> AnswerStream:
        """The model's answer from `passages` alone; the stream gives the unchecked draft."""
        return AnswerStream(self._write(question, passages, as_of, stream))

    def _write(
        self, question: str, passages: list[Passage], as_of: str | None, stream: bool
    ) -> Generator[str, None, Answer]:
        if not passages:
            # Nothing to answer from: asking the model would only invite a guess.
            yield NO_ANSWER
            return checked_answer(question, NO_ANSWER, passages, self.name, self.model)
        messages = answer_messages(question, passages, as_of)
        # A server can echo what it was sent; the key never reaches the screen or a report.
        if stream:
            pieces = []
            for piece in masked_stream(self._stream(messages)):
                pieces.append(piece)
                yield piece
            draft = "".join(pieces)
        else:
            draft = mask_secrets(self._reply(messages))
            yield draft
        return checked_answer(question, draft, passages, self.name, self.model)

    def complete(self, system: str, user: str) -> str:
        """The model's reply to one system and one user message (not streamed)."""
        return self._reply([system_message(system), user_message(user)])

    def _reply(self, messages: Messages) -> str:
        from qa.llm.errors import reply_or_error

        return reply_or_error(lambda: self.chat.reply(messages), self.name, self.settings)

    def _stream(self, messages: Messages) -> Iterator[str]:
        from qa.llm.errors import stream_or_error

        return stream_or_error(lambda: self.chat.stream(messages), self.name, self.settings)


def answer_messages(question: str, passages: list[Passage], as_of: str | None) -> Messages:
    """The system and user messages that ask for a cited answer from `passages`."""
    date_line = (
        f"The question is asked as of {as_of}; the passages are dated on or before it.\n\n"
        if as_of
        else ""
    )
    return [
        system_message(render_prompt(SYSTEM_TEMPLATE, no_answer=NO_ANSWER)),
        user_message(
            render_prompt(
                ANSWER_TEMPLATE,
                date_line=date_line,
                passages=format_passages(passages),
                question=question,
                no_answer=NO_ANSWER,
            )
        ),
    ]


def format_passages(passages: list[Passage]) -> str:
    """Passages numbered from 1 in retrieval order; inside each one's tags its title, date and
    source on one line, then the text. Nothing from an article stands outside the tags."""
    return "\n\n".join(
        f"[{number}]\n<passage>\n{passage_label(passage)}\n{PASSAGE_TAG.sub(' ', passage.text)}\n"
        "</passage>"
        for number, passage in enumerate(passages, start=1)
    )


def passage_label(passage: Passage) -> str:
    """Title, date and source on one line, with no tags of any kind."""
    parts = [passage.title, passage.date or "undated", passage.source or ""]
    label = " | ".join(" ".join(ANY_TAG.sub(" ", part).split()) for part in parts if part)
    return label


def system_message(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


def user_message(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}
