"""What went wrong with a provider, in one line that says what to do; secrets never shown.

Retrying is the SDK's (OpenAI's retries transient failures before a reply starts, honouring
Retry-After); here a failure is only put into words. A failure may arrive as raised, or as
the cause of what the SDK raised for it: the most specific one found is described.
"""

from collections.abc import Callable, Iterator

from qa.errors import LLMError
from qa.llm.limits import NotAChatCompletion, ReplyCutShort, ReplyFault, ReplyTimeout
from qa.llm.providers import openai_model
from qa.masking import mask_secrets
from qa.settings import Settings

NOT_CHECKED = "The partial answer above was not checked"


def provider_failures() -> tuple[type[Exception], ...]:
    """The errors a provider's client raises for its server: the SDK's, a dropped transfer (in
    either HTTP library the SDK may be built on), and a reply qa stopped reading."""
    import httpx
    import openai

    from qa.llm.http_client import httpx as sdk_httpx

    return (openai.OpenAIError, httpx.HTTPError, sdk_httpx.HTTPError, ReplyFault)


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
        raise provider_error(error, provider, settings, started=started) from error


def provider_error(
    error: Exception, provider: str, settings: Settings, started: bool = False
) -> LLMError:
    """One line saying what went wrong with the provider and what to do about it; `started`
    when part of the reply was shown already."""
    if isinstance(error, LLMError):
        return error
    fault = found_in(error, ReplyFault)
    if fault is not None:
        return fault_error(fault, provider, settings, started)
    if started:
        return broken_stream_error(error, provider, settings)
    return sdk_error(error, provider, settings)


def sdk_error(error: Exception, provider: str, settings: Settings) -> LLMError:
    """What an OpenAI SDK error means for qa, before any of the reply was shown."""
    import openai

    where = server_name(provider, settings)
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
            f"{provider}: no complete reply from {where} within {settings.llm.timeout:g}s.",
            "Raise QA_TIMEOUT or check the server.",
        )
    if isinstance(error, openai.APIConnectionError):
        if broke_off(error):
            return LLMError(
                f"{provider}: the connection to {where} broke off during the reply.",
                "Ask again, or check the server's log.",
            )
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


def fault_error(fault: ReplyFault, provider: str, settings: Settings, started: bool) -> LLMError:
    """A reply qa stopped reading or cannot use; after shown text, that text is unchecked."""
    where = server_name(provider, settings)
    if isinstance(fault, ReplyTimeout):
        if started:
            return LLMError(
                f"{provider}: the reply from {where} did not finish within {fault.seconds:g}s.",
                f"{NOT_CHECKED}; raise QA_TIMEOUT or ask again.",
            )
        return LLMError(
            f"{provider}: no complete reply from {where} within {fault.seconds:g}s"
            f"{attempts_note(provider, settings)}.",
            "Raise QA_TIMEOUT or check the server.",
        )
    if isinstance(fault, NotAChatCompletion):
        return LLMError(
            f"{provider}: the reply from {where} was not a valid chat completion ({fault.reason}).",
            "Check that the base URL is an OpenAI-compatible server's (it usually ends in /v1).",
        )
    if isinstance(fault, ReplyCutShort):
        return broke_off_midway(provider, where, started)
    lead = f"{NOT_CHECKED}; the server" if started else "The server"
    return LLMError(
        f"{provider}: the reply from {where} grew past {settings.llm.max_reply_kb:g} KB "
        "(QA_MAX_REPLY_KB).",
        f"{lead} may be ignoring the token limit.",
    )


def broken_stream_error(error: Exception, provider: str, settings: Settings) -> LLMError:
    """A reply that started and then failed: the server was reached, the reply was cut off."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return fault_error(ReplyTimeout(settings.llm.timeout), provider, settings, started=True)
    if isinstance(error, openai.APIConnectionError):
        return broke_off_midway(provider, server_name(provider, settings), started=True)
    return sdk_error(error, provider, settings)


def broke_off_midway(provider: str, where: str, started: bool) -> LLMError:
    return LLMError(
        f"{provider}: the reply from {where} broke off midway.",
        f"{NOT_CHECKED}; ask again." if started else "Ask again, or check the server's log.",
    )


def unexpected_error(error: Exception, provider: str) -> LLMError:
    """Any other failure: its type and first words, on one line."""
    return LLMError(f"{provider} failed: {type(error).__name__}: {short(str(error))}")


def server_name(provider: str, settings: Settings) -> str:
    """The server a provider's reply comes from, as qa names it: an OpenAI-compatible
    server's URL (masked), the OpenAI API, or another provider's own server."""
    if provider != "openai":
        return "its server"
    return mask_secrets(settings.llm.base_url) if settings.llm.base_url else "the OpenAI API"


def attempts_note(provider: str, settings: Settings) -> str:
    """How an OpenAI deadline came about, when retries made it longer than QA_TIMEOUT."""
    attempts = settings.llm.max_retries + 1
    if provider != "openai" or attempts == 1:
        return ""
    return f" ({attempts} attempts of QA_TIMEOUT={settings.llm.timeout:g}s)"


def broke_off(error: Exception) -> bool:
    """Whether a connection failed after the request went out, not while connecting."""
    import httpx

    from qa.llm.http_client import httpx as sdk_httpx

    broken = tuple(
        getattr(module, name)
        for module in (httpx, sdk_httpx)
        for name in ("ReadError", "WriteError", "RemoteProtocolError")
    )
    return found_in(error, broken) is not None


def found_in(error: BaseException, kinds: type | tuple[type, ...]) -> BaseException | None:
    """`error`, or the first error it was raised from or while handling, that is of `kinds`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def short(text: str, limit: int = 200) -> str:
    """The first line of a message from elsewhere, clipped, with any secret masked."""
    line = mask_secrets(" ".join(str(text).split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"
