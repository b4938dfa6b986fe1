"""Text embeddings: the bundled all-MiniLM-L6-v2 (offline; ONNX Runtime or torch), or any
OpenAI-compatible server (`qa.openai_embedder`)."""

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Protocol

from qa.bundled_model import bundled_model_path
from qa.errors import EmbeddingError
from qa.settings import Settings, hub_offline

BATCH_SIZE = 64


class Embedder(Protocol):
    """Turns texts into vectors; `name` is recorded with every collection."""

    name: str

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def warm_up(self) -> None:
        """Start loading what can load outside the interpreter lock, and return at once: the
        store opens meanwhile, and the first text embedded waits for the load."""
        ...


def get_embedder(settings: Settings, keep_files: bool = True) -> Embedder:
    """The embedder the settings ask for; without `keep_files`, one that writes no derived
    file (the bundled model's graph, when not cached yet, is built in memory)."""
    if settings.embeddings.provider == "openai":
        from qa.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(settings)
    if settings.embeddings.backend == "torch":
        return LocalEmbedder(settings.embeddings.model_name)
    from qa.onnx_embedder import OnnxEmbedder

    # A cache of derived files belongs with qa's other state: it follows QA_HOME (tests, several
    # installs) and is writable, unlike site-packages, even when the store is a Chroma server.
    return OnnxEmbedder(settings.embeddings.model_name, settings.model_cache_dir, keep_files)


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
    hub_offline()
    path = bundled_model_path(name)
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError:
        raise EmbeddingError(
            "QA_EMBEDDING_BACKEND=torch needs torch and sentence-transformers, not installed.",
            'Run: pip install "qa-news[torch]", or unset QA_EMBEDDING_BACKEND.',
        ) from None

    # Library progress bars would clutter stderr, which carries qa's own progress.
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    try:
        return SentenceTransformer(str(path), device="cpu")
    except (OSError, ValueError) as error:
        raise EmbeddingError(f"Cannot load the embedding model from {path}: {error}") from error
