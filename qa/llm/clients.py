"""Chat clients: any LangChain chat model (OpenAI and compatible servers among them), or a GGUF
run by llama-cpp-python; each gives a whole reply or the reply piece by piece."""

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from qa.errors import InputError, LLMError
from qa.llm.limits import ReplyFault, within_limits
from qa.settings import Settings
from qa.types import Messages

# Answers are one to three sentences; the cap keeps a rambling model from running on.
MAX_ANSWER_TOKENS = 300
# What llama.cpp's server uses by default; without it small models loop on a phrase.
LOCAL_REPEAT_PENALTY = 1.1

# How LangChain names the package a provider needs: "... requires the langchain-x package".
MISSING_PACKAGE = re.compile(r"requires the (\S+) package")


class ChatModel(Protocol):
    """One chat model behind a provider: a whole reply, or the reply piece by piece."""

    provider: str
    model: str

    def reply(self, messages: Messages) -> str: ...

    def stream(self, messages: Messages) -> Iterator[str]: ...


class LangChainChat:
    """Any chat model LangChain's `init_chat_model` builds from a provider and a model name.

    Every call ends by a deadline and a size cap (qa.llm.limits), whatever the provider's SDK
    does about either.
    """

    def __init__(self, provider: str, model: str, settings: Settings, **options: Any) -> None:
        self.provider = provider
        self.model = model
        # The whole call, retries and the waits between them included, ends by this.
        self.seconds = settings.llm.timeout * (settings.llm.max_retries + 1)
        self.max_reply_kb = settings.llm.max_reply_kb
        self.client = langchain_chat_model(
            provider,
            model,
            temperature=settings.llm.temperature,
            timeout=settings.llm.timeout,
            max_tokens=MAX_ANSWER_TOKENS,
            **options,
        )

    def reply(self, messages: Messages) -> str:
        with self.errors_in_one_line():
            return "".join(self._within_limits(lambda: [self._whole_reply(messages)]))

    def stream(self, messages: Messages) -> Iterator[str]:
        with self.errors_in_one_line():
            yield from self._within_limits(lambda: self._pieces(messages))

    def _within_limits(self, pieces: Callable[[], Iterable[str]]) -> Iterator[str]:
        return within_limits(pieces, self.seconds, self.max_reply_kb)

    def _whole_reply(self, messages: Messages) -> str:
        return text_of(self.client.invoke(messages).content)

    def _pieces(self, messages: Messages) -> Iterator[str]:
        for chunk in self.client.stream(messages):
            if text := text_of(chunk.content):
                yield text

    @contextmanager
    def errors_in_one_line(self) -> Iterator[None]:
        """Other providers' SDKs retry on their own; qa only says in one line how they failed.

        Their errors share no base class qa could name, hence `Exception`. OpenAI's errors, and
        replies stopped at a limit, pass unchanged: qa.llm.errors says what each one means.
        """
        try:
            yield
        except Exception as error:
            if self.provider == "openai" or isinstance(error, LLMError | ReplyFault):
                raise
            from qa.llm.errors import unexpected_error

            raise unexpected_error(error, self.provider) from error


class OpenAIChat(LangChainChat):
    """OpenAI, or any OpenAI-compatible server at `settings.llm.base_url`."""

    def __init__(self, settings: Settings) -> None:
        from qa.llm.http_client import BoundedClient
        from qa.llm.providers import openai_api_key, openai_model

        super().__init__(
            "openai",
            openai_model(settings),
            settings,
            api_key=openai_api_key(settings),
            base_url=settings.llm.base_url,
            # The SDK retries what a retry can help (429, 5xx, timeouts, dropped
            # connections), after Retry-After, and only before a reply starts.
            max_retries=settings.llm.max_retries,
            # Each attempt ends by QA_TIMEOUT and QA_MAX_REPLY_KB.
            http_client=BoundedClient(settings.llm.timeout, settings.llm.max_reply_kb),
        )


class LocalChat:
    """A GGUF model run by llama-cpp-python in a child process of qa."""

    provider = "local"

    def __init__(self, settings: Settings) -> None:
        from qa.llm.local_model import LocalModel
        from qa.llm.providers import local_model_path

        path = local_model_path(settings)
        self.model = path.name
        self.temperature = settings.llm.temperature
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


def langchain_chat_model(provider: str, model: str, **options: Any) -> Any:
    """LangChain's chat model `model` of `provider`; what stops it from being built, in one line."""
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(model, model_provider=provider, **options)
    except ImportError as error:
        package = missing_package(error, provider)
        raise LLMError(
            f"{provider}: the {package} package is not installed.",
            f"Install it with: pip install {package} (or use --llm extractive).",
        ) from error
    except ValueError as error:
        # A provider LangChain does not know, or a model its package refuses to configure
        # (pydantic's ValidationError, a missing key, is a ValueError too).
        if str(error).startswith("Unsupported provider"):
            raise InputError(
                f"LangChain has no chat model provider {provider!r} (--llm {provider}:{model}).",
                "Use one such as openai, anthropic, google_genai, mistralai, groq or ollama.",
            ) from error
        from qa.llm.errors import unexpected_error

        raise unexpected_error(error, provider) from error


def missing_package(error: ImportError, provider: str) -> str:
    found = MISSING_PACKAGE.search(str(error))
    return found[1].strip("`'\".,") if found else "langchain-" + provider.replace("_", "-")
