"""Which embedding model and chunk settings a collection was built with, and refusing others."""

from typing import Any

from qa.chunking import ChunkSettings
from qa.errors import ModelMismatchError


def built_with(embedding_model: str, chunking: ChunkSettings) -> dict[str, Any]:
    """What a new collection records of how its vectors are made."""
    return {"embedding_model": embedding_model, **chunking.as_metadata()}


def check_compatible(
    collection: str, embedding_model: str, chunking: ChunkSettings, recorded: dict[str, Any]
) -> None:
    """Refuse a model or chunking other than the ones `recorded` for the collection."""
    check_embedding_model(collection, embedding_model, recorded)
    differing = {
        key: (recorded.get(key), value)
        for key, value in chunking.as_metadata().items()
        if recorded.get(key) != value
    }
    if differing:
        was = ", ".join(f"{key}={old}" for key, (old, _) in differing.items())
        asked = ", ".join(f"{key}={new}" for key, (_, new) in differing.items())
        raise ModelMismatchError(
            f"Collection {collection!r} was built with {was}; this ingest asks for {asked}.",
            "Use the recorded settings, another --collection, or `qa reset` first.",
        )


def check_embedding_model(collection: str, embedding_model: str, recorded: dict[str, Any]) -> None:
    """Refuse to mix vectors of two embedding models in one collection."""
    if recorded.get("embedding_model") != embedding_model:
        raise ModelMismatchError(
            f"Collection {collection!r} was built with embedding model "
            f"{recorded.get('embedding_model')!r}, but {embedding_model!r} is configured.",
            "Use the same model (QA_EMBEDDINGS / QA_EMBEDDING_MODEL), another "
            "--collection, or `qa reset` and ingest again.",
        )
