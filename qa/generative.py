"""Answer with a language model (any LangChain chat model, or a local GGUF), then check its
citations."""

import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import Protocol

from qa.answering import Answer, TokenCallback
from qa.citations import MARKER_GROUP, NO_ANSWER, is_abstention, verify_citations
from qa.errors import LLMError
from qa.masking import emit_masked, mask_secrets
from qa.retrieval import Passage
from qa.settings import Settings, provider_model

SYSTEM_TEMPLATE = "system.txt"
ANSWER_TEMPLATE = "answer.txt"
# Answers are one to three sentences; the cap keeps a rambling model from running on.
MAX_ANSWER_TOKENS = 300
# What llama.cpp's server uses by default; without it small models loop on a phrase.
LOCAL_REPEAT_PENALTY = 1.1
# An article must not be able to close its own passage and speak as the prompt.
PASSAGE_TAG = re.compile(r"</?\s*passages?\b[^>]*>", re.IGNORECASE)
ANY_TAG = re.compile(r"<[^>]*>")

Messages = list[dict[str, str]]


class ChatModel(Protocol):
    """One chat model behind a provider: a whole reply, or the reply piece by piece."""

    provider: str
    model: str

    def reply(self, messages: Messages) -> str: ...

    def stream(self, messages: Messages) -> Iterator[str]: ...


class GenerativeAnswerer:
    """Asks a chat model to answer from numbered passages, then keeps only valid citations."""

    def __init__(self, chat: ChatModel, settings: Settings) -> None:
        self.chat = chat
        self.settings = settings
        self.name = chat.provider
        self.model: str | None = chat.model

    @classmethod
    def for_provider(cls, provider: str, settings: Settings) -> "GenerativeAnswerer":
        """The answerer for `openai`, `local` or a LangChain `provider:model`, from `settings`."""
        if provider == "openai":
            return cls(OpenAIChat(settings), settings)
        if provider == "local":
            return cls(LocalChat(settings), settings)
        if named := provider_model(provider):
            return cls(LangChainChat(*named, settings), settings)
        raise LLMError(
            f"Unknown answerer {provider!r}.", "Use extractive, openai, local or provider:model."
        )

    def answer(
        self,
        question: str,
        passages: list[Passage],
        *,
        as_of: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Answer:
        """The model's answer from `passages` alone; `on_token` sees the unchecked draft."""
        if not passages:
            # Nothing to answer from: asking the model would only invite a guess.
            if on_token:
                on_token(NO_ANSWER)
            return checked_answer(question, NO_ANSWER, passages, self.name, self.model)
        messages = answer_messages(question, passages, as_of)
        # A server can echo what it was sent; the key never reaches the screen or a report.
        if on_token is None:
            draft = mask_secrets(self._reply(messages))
        else:
            draft = emit_masked(on_token, self._stream(messages))
        return checked_answer(question, draft, passages, self.name, self.model)

    def complete(self, system: str, user: str) -> str:
        """The model's reply to one system and one user message (not streamed)."""
        return self._reply([system_message(system), user_message(user)])

    def _reply(self, messages: Messages) -> str:
        from qa.providers import call_with_retries

        return call_with_retries(lambda: self.chat.reply(messages), self.name, self.settings)

    def _stream(self, messages: Messages) -> Iterator[str]:
        from qa.providers import stream_with_retries

        return stream_with_retries(lambda: self.chat.stream(messages), self.name, self.settings)


def checked_answer(
    question: str, draft: str, passages: list[Passage], answerer: str, model: str | None
) -> Answer:
    """The draft with its markers verified, and whether it abstains or lacks any citation."""
    verified = verify_citations(draft, passages)
    refused = strip_markers_and_space(verified.text).startswith(NO_ANSWER)
    abstained = refused or (not verified.citations and is_abstention(verified.text))
    citations = [] if refused else verified.citations
    return Answer(
        question=question,
        text=NO_ANSWER if refused else verified.text,
        citations=citations,
        passages=passages,
        abstained=abstained,
        answerer=answerer,
        model=model,
        unsupported=not abstained and not citations,
        dropped_markers=verified.dropped,
    )


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


def render_prompt(name: str, **variables: str) -> str:
    """Template `name` of `qa.prompts` filled with exactly the variables it names."""
    template = load_template(name)
    fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    if fields != variables.keys():
        # A template and its caller out of step is a bug: a prompt must never go out half-filled.
        raise ValueError(f"Prompt {name} uses {sorted(fields)} but was given {sorted(variables)}.")
    return template.format(**variables)


@lru_cache(maxsize=8)
def load_template(name: str) -> str:
    return resources.files("qa.prompts").joinpath(name).read_text(encoding="utf-8")


def system_message(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


def user_message(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def strip_markers_and_space(text: str) -> str:
    return " ".join(MARKER_GROUP.sub(" ", text).split())


class LangChainChat:
    """Any chat model LangChain's `init_chat_model` builds from a provider and a model name."""

    def __init__(self, provider: str, model: str, settings: Settings) -> None:
        from qa.providers import langchain_chat_model, openai_api_key

        self.provider = provider
        self.model = model
        options = {
            "temperature": settings.temperature,
            "timeout": settings.timeout,
            "max_tokens": MAX_ANSWER_TOKENS,
        }
        if provider == "openai":
            options |= {
                "api_key": openai_api_key(settings),
                "base_url": settings.base_url,
                # Retries happen in qa.providers, where a started stream is never repeated.
                "max_retries": 0,
            }
        self.client = langchain_chat_model(provider, model, **options)

    def reply(self, messages: Messages) -> str:
        with self.errors_in_one_line():
            return text_of(self.client.invoke(messages).content)

    def stream(self, messages: Messages) -> Iterator[str]:
        with self.errors_in_one_line():
            for chunk in self.client.stream(messages):
                if text := text_of(chunk.content):
                    yield text

    @contextmanager
    def errors_in_one_line(self) -> Iterator[None]:
        """Other providers' SDKs retry on their own; qa only says in one line how they failed.

        OpenAI's errors pass unchanged: qa.providers retries them and says what to do.
        """
        try:
            yield
        except Exception as error:
            if self.provider == "openai" or isinstance(error, LLMError):
                raise
            from qa.providers import unexpected_error

            raise unexpected_error(error, self.provider) from error


class OpenAIChat(LangChainChat):
    """OpenAI, or any OpenAI-compatible server at `settings.base_url`."""

    def __init__(self, settings: Settings) -> None:
        from qa.providers import openai_model

        super().__init__("openai", openai_model(settings), settings)


class LocalChat:
    """A GGUF model run by llama-cpp-python in a child process of qa."""

    provider = "local"

    def __init__(self, settings: Settings) -> None:
        from qa.local_model import LocalModel
        from qa.providers import local_model_path

        path = local_model_path(settings)
        self.model = path.name
        self.temperature = settings.temperature
        self.runner = LocalModel(path)

    def reply(self, messages: Messages) -> str:
        return "".join(self.stream(messages))

    def stream(self, messages: Messages) -> Iterator[str]:
        return self.runner.complete(
            messages,
            max_tokens=MAX_ANSWER_TOKENS,
            temperature=self.temperature,
            repeat_penalty=LOCAL_REPEAT_PENALTY,
        )


def text_of(content: str | list) -> str:
    """The text of a message's content, which some models send as a list of parts."""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in content
    )
