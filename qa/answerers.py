"""Every answerer qa offers, declared once: its `--llm` name, what it is, and how it is built.

A new answerer is one entry here (and its module); settings, `--help` and `qa ask` follow.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.embeddings import Embedder
    from qa.settings import Settings
    from qa.types import Answerer


@dataclass(frozen=True)
class Kind:
    name: str
    about: str
    build: Callable[["Settings", "Embedder"], "Answerer"]


def extractive(settings: "Settings", embedder: "Embedder") -> "Answerer":
    from qa.extractive import ExtractiveAnswerer

    return ExtractiveAnswerer(embedder)


def openai(settings: "Settings", embedder: "Embedder") -> "Answerer":
    from qa.llm.answerer import GenerativeAnswerer
    from qa.llm.clients import OpenAIChat

    return GenerativeAnswerer(OpenAIChat(settings), settings)


def local(settings: "Settings", embedder: "Embedder") -> "Answerer":
    from qa.llm.answerer import GenerativeAnswerer
    from qa.llm.clients import LocalChat

    return GenerativeAnswerer(LocalChat(settings), settings)


def langchain(provider: str, model: str, settings: "Settings") -> "Answerer":
    from qa.llm.answerer import GenerativeAnswerer
    from qa.llm.clients import LangChainChat

    return GenerativeAnswerer(LangChainChat(provider, model, settings), settings)


KINDS = {
    kind.name: kind
    for kind in (
        Kind(
            "extractive", "quotes the passages' best sentences; no model, never invents", extractive
        ),
        Kind("openai", "OpenAI, or any OpenAI-compatible server at the base URL", openai),
        Kind("local", "a GGUF model run by llama-cpp-python (bundled SmolLM2-135M)", local),
    )
}
# `auto`, then every kind; besides these, any LangChain chat model as `provider:model`.
NAMES = ("auto", *KINDS)


def chosen(settings: "Settings") -> str:
    """The answerer `settings.llm` names; `auto` is openai when a key or base URL is
    configured, else extractive."""
    if settings.llm != "auto":
        return settings.llm
    return "openai" if os.environ.get("OPENAI_API_KEY") or settings.base_url else "extractive"


def check_choice(settings: "Settings") -> None:
    """Refuse an answerer name qa does not have, before any work is done."""
    from qa.errors import InputError

    if settings.llm not in NAMES and settings.langchain_model is None:
        raise InputError(
            f"{settings.llm!r} is not an answerer: use {', '.join(NAMES)}, or a LangChain chat "
            "model as provider:model (e.g. anthropic:claude-sonnet-4-5, ollama:llama3.2)."
        )


def build_answerer(settings: "Settings", embedder: "Embedder") -> "Answerer":
    """The answerer the settings name."""
    check_choice(settings)
    name = chosen(settings)
    if name in KINDS:
        return KINDS[name].build(settings, embedder)
    provider, model = settings.langchain_model or (name, "")
    return langchain(provider, model, settings)
