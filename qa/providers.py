"""Which answerer to use, the OpenAI API key, and provider errors in plain words."""

import os

from qa.errors import LLMError
from qa.settings import Settings


def resolve_llm(settings: Settings) -> str:
    """`auto` means OpenAI-compatible when a key or base URL is configured, else extractive."""
    if settings.llm != "auto":
        return settings.llm
    return "openai" if os.environ.get("OPENAI_API_KEY") or settings.base_url else "extractive"


def openai_api_key(settings: Settings) -> str:
    """The API key: from the environment; a local server with a base URL needs none."""
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if key:
        return key
    if settings.base_url:
        # OpenAI-compatible servers such as Ollama accept any key; the client insists on one.
        return "not-needed"
    raise LLMError(
        "No OpenAI API key is set.",
        "Set OPENAI_API_KEY, or OPENAI_BASE_URL for a local OpenAI-compatible server, "
        "or use --llm extractive.",
    )


def provider_error(error: Exception, provider: str, settings: Settings) -> LLMError:
    """One line saying what went wrong with the provider and what to do about it."""
    import openai

    where = settings.base_url or "the OpenAI API"
    if isinstance(error, LLMError):
        return error
    if isinstance(error, openai.AuthenticationError):
        return LLMError(
            f"{provider}: the API key was rejected by {where}.", "Check OPENAI_API_KEY."
        )
    if isinstance(error, openai.NotFoundError):
        return LLMError(
            f"{provider}: model or endpoint not found at {where}.",
            "Check --model / QA_MODEL and the base URL (it usually ends in /v1).",
        )
    if isinstance(error, openai.RateLimitError):
        return LLMError(f"{provider}: rate limited by {where}.", "Wait and try again.")
    if isinstance(error, openai.APITimeoutError):
        return LLMError(
            f"{provider}: no reply from {where} within {settings.timeout:g}s.",
            "Raise QA_TIMEOUT or check the server.",
        )
    if isinstance(error, openai.APIConnectionError):
        return LLMError(
            f"{provider}: cannot reach {where}.", "Check that the server is running and the URL."
        )
    if isinstance(error, openai.APIStatusError):
        return LLMError(
            f"{provider}: {where} answered HTTP {error.status_code}.",
            "Try again later, or check the server's log.",
        )
    return LLMError(f"{provider} failed: {type(error).__name__}: {error}")
