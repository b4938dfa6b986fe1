"""Typed errors raised by the core; the CLI turns each into one line and an exit code."""


class QAError(Exception):
    """A failure the user can act on. `exit_code` 1: the operation failed; 2: bad input."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class InputError(QAError):
    """The user gave input that cannot be used (paths, files, test sets, options)."""

    exit_code = 2


class StoreError(QAError):
    """The vector store cannot be used as asked."""


class StoreUnavailableError(StoreError):
    """The Chroma server cannot be reached."""


class StoreBusyError(StoreError):
    """Another process is writing to the embedded store."""


class ModelMismatchError(StoreError):
    """The collection was built with other embeddings or chunk settings."""


class EmptyCollectionError(StoreError):
    """Nothing has been ingested into the collection yet."""


class EmbeddingError(QAError):
    """The embedding model cannot be loaded or called."""


class LLMError(QAError):
    """The language model provider failed or is misconfigured."""
