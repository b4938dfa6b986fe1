"""`--llm openai`: the OpenAI API or any server that speaks it."""

from typing import TYPE_CHECKING

from qa.answerers.kind import Kind

if TYPE_CHECKING:
    from qa.embeddings import Embedder
    from qa.settings import Settings
    from qa.types import Answerer


def build(settings: "Settings", embedder: "Embedder") -> "Answerer":
    from qa.llm.answerer import GenerativeAnswerer
    from qa.llm.clients import OpenAIChat

    return GenerativeAnswerer(OpenAIChat(settings), settings)


KIND = Kind("openai", "OpenAI, or any OpenAI-compatible server at the base URL", build)
