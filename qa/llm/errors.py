"""What went wrong with a provider, in one line that says what to do; secrets never shown.

Retrying is the SDK's (OpenAI's retries transient failures before a reply starts, honouring
Retry-After); here a failure is only put into words.
"""

from collections.abc import Callable, Iterator

from qa.errors import LLMError
from qa.llm.providers import openai_model
from qa.masking import mask_secrets
from qa.settings import Settings


def provider_failures() -> tuple[type[Exception], ...]:
    """The errors a provider's client raises for its server: the SDK's, and a dropped transfer."""
    import httpx
    import openai

    return (openai.OpenAIError, httpx.HTTPError)


def reply_or_error(call: Callable[[], str], provider: str, settings: Settings) -> str:
    """`call()`; a provider failure becomes one `LLMError`."""
    try:
        return call()
    except provider_failures() as error:
        raise provider_error(error, provider, settings) from error


def stream_or_error(
    start: Callable[[], Iterator[str]], provider: str, settings: Settings
) -> Iterator[str]:
    """The pieces of `start()`; a failure after the first piece says the reply broke off."""
    started = False
    try:
        for piece in start():
            started = True
            yield piece
    except provider_failures() as error:
        if started:
            raise broken_stream_error(error, provider, settings) from error
        raise provider_error(error, provider, settings) from error


def provider_error(error: Exception, provider: str, settings: Settings) -> LLMError:
    """One line saying what went wrong with the provider and what to do about it."""
    import openai

    where = mask_secrets(settings.base_url) if settings.base_url else "the OpenAI API"
    if isinstance(error, LLMError):
        return error
    if isinstance(error, openai.AuthenticationError):
        return LLMError(
            f"{provider}: the API key was rejected by {where}.", "Check OPENAI_API_KEY."
        )
    if isinstance(error, openai.PermissionDeniedError):
        return LLMError(
            f"{provider}: the API key may not use this model at {where}.",
            "Check the key's permissions or choose another --model.",
        )
    if isinstance(error, openai.NotFoundError):
        return LLMError(
            f"{provider}: model {openai_model(settings)!r} or the endpoint was not found "
            f"at {where}.",
            "Check --model / QA_MODEL and the base URL (it usually ends in /v1).",
        )
    if isinstance(error, openai.RateLimitError):
        if error.code == "insufficient_quota":
            return LLMError(f"{provider}: the quota at {where} is used up.", "Check your plan.")
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
    if isinstance(error, openai.BadRequestError):
        return LLMError(
            f"{provider}: {where} refused the request: {short(error.message)}",
            "A smaller --k makes the prompt shorter.",
        )
    if isinstance(error, openai.APIStatusError):
        return LLMError(
            f"{provider}: {where} answered HTTP {error.status_code}.",
            "Try again later, or check the server's log.",
        )
    return unexpected_error(error, provider)


def unexpected_error(error: Exception, provider: str) -> LLMError:
    """Any other failure: its type and first words, on one line."""
    return LLMError(f"{provider} failed: {type(error).__name__}: {short(str(error))}")


def broken_stream_error(error: Exception, provider: str, settings: Settings) -> LLMError:
    """A reply that started and then failed: the server was reached, the reply was cut off."""
    import openai

    if not isinstance(error, openai.APIConnectionError):
        return provider_error(error, provider, settings)
    where = mask_secrets(settings.base_url) if settings.base_url else "the OpenAI API"
    return LLMError(
        f"{provider}: the reply from {where} broke off midway.",
        "The partial answer above was not checked; ask again.",
    )


def short(text: str, limit: int = 200) -> str:
    """The first line of a message from elsewhere, clipped, with any secret masked."""
    line = mask_secrets(" ".join(str(text).split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"
