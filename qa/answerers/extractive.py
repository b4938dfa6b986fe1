"""`--llm extractive`: no model at all."""

from typing import TYPE_CHECKING

from qa.answerers.kind import Kind

if TYPE_CHECKING:
    from qa.embeddings import Embedder
    from qa.settings import Settings
    from qa.types import Answerer


def build(settings: "Settings", embedder: "Embedder") -> "Answerer":
    from qa.extractive import ExtractiveAnswerer

    return ExtractiveAnswerer(embedder)


KIND = Kind("extractive", "quotes the passages' best sentences; no model, never invents", build)
