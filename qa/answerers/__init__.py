"""Every answerer qa offers. Each is one module in this package that declares `KIND`.

A new answerer is a new module here; settings, `--help`, `qa ask`, chat and eval follow.
Any LangChain chat model is available besides them, as `provider:model`.
"""

import importlib
import os
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

from qa.answerers.kind import Kind

if TYPE_CHECKING:
    from qa.embeddings import Embedder
    from qa.settings import Settings
    from qa.types import Answerer

# Modules of this package that declare no answerer.
NOT_ANSWERERS = {"kind"}


@cache
def kinds() -> dict[str, Kind]:
    """Every declared answerer by name, in module-name order."""
    found = {}
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        if module not in NOT_ANSWERERS:
            kind = importlib.import_module(f"{__name__}.{module}").KIND
            found[kind.name] = kind
    return found


def names() -> tuple[str, ...]:
    """`auto`, then every declared answerer."""
    return ("auto", *kinds())


def chosen(settings: "Settings") -> str:
    """The answerer `settings.llm` names; `auto` is openai when a key or base URL is
    configured, else extractive."""
    if settings.llm != "auto":
        return settings.llm
    return "openai" if os.environ.get("OPENAI_API_KEY") or settings.base_url else "extractive"


def check_choice(settings: "Settings") -> None:
    """Refuse an answerer name qa does not have, before any work is done."""
    from qa.errors import InputError

    if settings.llm not in names() and settings.langchain_model is None:
        raise InputError(
            f"{settings.llm!r} is not an answerer: use {', '.join(names())}, or a LangChain chat "
            "model as provider:model (e.g. anthropic:claude-sonnet-4-5, ollama:llama3.2)."
        )


def build_answerer(settings: "Settings", embedder: "Embedder") -> "Answerer":
    """The answerer the settings name."""
    check_choice(settings)
    name = chosen(settings)
    if name in kinds():
        return kinds()[name].build(settings, embedder)
    from qa.llm.answerer import GenerativeAnswerer
    from qa.llm.clients import LangChainChat

    provider, model = settings.langchain_model or (name, "")
    if provider == "openai":
        # `openai:MODEL` is `--llm openai --model MODEL`: the same key, server and limits.
        return kinds()["openai"].build(settings, embedder)
    return GenerativeAnswerer(LangChainChat(provider, model, settings), settings)
