"""Question answering over news articles, with checkable citations.

The names in `__all__` are the Python API the README shows; each is imported on first use, so
`import qa` (and `qa --help`) stays fast.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "Workspace": "qa.workspace",
    "Settings": "qa.settings",
    "get_settings": "qa.settings",
    "Answer": "qa.types",
    "Citation": "qa.types",
    "Passage": "qa.types",
    "NewsRetriever": "qa.langchain",
    "NewsQAChain": "qa.langchain",
    "QAError": "qa.errors",
}
__all__ = [*_WHERE, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
