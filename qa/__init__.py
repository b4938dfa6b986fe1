"""Question answering over news articles, with checkable citations."""

__version__ = "0.1.0"
