"""What declares an answerer: its `--llm` name, what it is, and how it is built."""

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
    # Imports its implementation when called, so listing the kinds stays cheap.
    build: Callable[["Settings", "Embedder"], "Answerer"]
