"""Text embeddings: the bundled all-MiniLM-L6-v2 (offline; ONNX Runtime or torch) or OpenAI."""

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Protocol

from qa.bundled_model import bundled_model_path
from qa.errors import EmbeddingError
from qa.settings import Settings

BATCH_SIZE = 64


class Embedder(Protocol):
    """Turns texts into vectors; `name` is recorded with every collection."""

    name: str

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def warm_up(self) -> None:
        """Load what can be loaded quickly, ahead of the first text; called while the store
        opens, so the two overlap."""
        ...


def get_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.embeddings == "openai":
        return OpenAIEmbedder(settings)
    if settings.embedding_backend == "torch":
        return LocalEmbedder(settings.embedding_model_name)
    from qa.onnx_embedder import OnnxEmbedder

    # A cache of derived files belongs with qa's other state: it follows QA_HOME (tests, several
    # installs) and is writable, unlike site-packages, even when the store is a Chroma server.
    return OnnxEmbedder(settings.embedding_model_name, settings.model_cache_dir)


class LocalEmbedder:
    """A sentence-transformers model on torch, loaded from an installed package, never a hub.

    The same vectors as `qa.onnx_embedder.OnnxEmbedder`, which is the default because it starts
    without importing torch; this one is the fallback (QA_EMBEDDING_BACKEND=torch).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        model = load_local_model(self.name)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = list(texts[start : start + BATCH_SIZE])
            vectors.extend(model.encode(batch, normalize_embeddings=True).tolist())
            if progress:
                progress(len(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def warm_up(self) -> None:
        # Importing torch holds the interpreter lock: nothing would overlap with it.
        return None


@lru_cache(maxsize=2)
def load_local_model(name: str):
    """Load once per process; offline, so a missing model fails fast instead of downloading."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = bundled_model_path(name)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # Library progress bars would clutter stderr, which carries qa's own progress.
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    try:
        return SentenceTransformer(str(path), device="cpu")
    except (OSError, ValueError) as error:
        raise EmbeddingError(f"Cannot load the embedding model from {path}: {error}") from error


class OpenAIEmbedder:
    """OpenAI (or a compatible server's) embeddings endpoint through langchain-openai."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.embedding_model_name
        self.settings = settings

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        client = self._client()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = list(texts[start : start + BATCH_SIZE])
            vectors.extend(self._call(client.embed_documents, batch))
            if progress:
                progress(len(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._call(self._client().embed_query, text)

    def warm_up(self) -> None:
        # A remote model: nothing to load here.
        return None

    def _client(self):
        from langchain_openai import OpenAIEmbeddings

        from qa.llm.providers import openai_api_key

        return OpenAIEmbeddings(
            model=self.name,
            api_key=openai_api_key(self.settings),
            base_url=self.settings.base_url,
            timeout=self.settings.timeout,
            max_retries=self.settings.max_retries,
            check_embedding_ctx_length=False,
        )

    def _call(self, function, argument):
        from qa.llm.errors import provider_error, provider_failures

        try:
            return function(argument)
        except provider_failures() as error:
            raise provider_error(error, "OpenAI embeddings", self.settings) from error
