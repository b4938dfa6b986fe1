"""`--llm local`: a GGUF model on this machine."""

from typing import TYPE_CHECKING

from qa.answerers.kind import Kind

if TYPE_CHECKING:
    from qa.embeddings import Embedder
    from qa.settings import Settings
    from qa.types import Answerer


def build(settings: "Settings", embedder: "Embedder") -> "Answerer":
    from qa.llm.answerer import GenerativeAnswerer
    from qa.llm.clients import LocalChat

    return GenerativeAnswerer(LocalChat(settings), settings)


KIND = Kind("local", "a GGUF model run by llama-cpp-python (bundled SmolLM2-135M)", build)
