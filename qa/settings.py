"""One settings object, read from flags and `QA_*` environment variables."""

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODELS = {
    "local": "all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
}
# LangChain's `provider:model` (`anthropic:claude-sonnet-4-5`, `ollama:llama3.2:3b`): the
# provider is a plain name; the model is whatever follows the first colon, without spaces.
PROVIDER_MODEL = re.compile(r"([A-Za-z][\w-]*):(\S+)")
ANSWERER_NAME = re.compile(r"[a-z][a-z_-]*")


class Settings(BaseSettings):
    """Everything qa can be configured with; built once and passed down."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="forbid", frozen=True)

    home: Path | None = Field(
        default=None,
        description="Data directory for the embedded store and history (default: per-user dir).",
    )
    collection: str = Field(default="default", description="Chroma collection name.")
    chroma_url: str | None = Field(
        default=None, description="URL of a Chroma server; unset means the embedded store."
    )
    embeddings: Literal["local", "openai"] = Field(
        default="local", description="Embedding provider: bundled local model or OpenAI."
    )
    embedding_model: str | None = Field(
        default=None, description="Embedding model name (default depends on the provider)."
    )
    embedding_base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible embeddings server, for "
        "QA_EMBEDDINGS=openai (default: the chat model's server, --base-url).",
    )
    embedding_api_key: SecretStr | None = Field(
        default=None,
        description="API key of the embeddings server (default: OPENAI_API_KEY, when the "
        "embeddings come from the chat model's server or the OpenAI API).",
    )
    embedding_concurrency: int = Field(
        default=4, ge=1, le=64, description="Embedding requests in flight at once."
    )
    # Text Embeddings Inference refuses more than 32 texts a request unless told otherwise.
    embedding_batch_size: int = Field(
        default=32, ge=1, le=2048, description="Texts per embedding request."
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("openai_api_key", "OPENAI_API_KEY"),
        description="Key for OpenAI (read from OPENAI_API_KEY).",
    )
    embedding_backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description=(
            "How the local model runs: onnx (ONNX Runtime; exported once into the data dir, "
            "then no torch) or torch (sentence-transformers)."
        ),
    )
    model_cache: Path | None = Field(
        default=None,
        description="Where derived model files (the exported ONNX graph) are kept "
        "(default: <home>/models).",
    )
    chunk_size: int = Field(default=900, ge=100, description="Longest chunk, in characters.")
    chunk_overlap: int = Field(
        default=150, ge=0, description="Characters of context repeated between chunks, at most."
    )
    chunk_header: bool = Field(
        default=False, description="Embed each chunk under its article's title and date."
    )
    max_article_mb: float = Field(
        default=5.0,
        gt=0,
        description="Largest article (a file, or a .jsonl record) ingest accepts, in MB.",
    )
    fetch_timeout: float = Field(
        default=20.0, gt=0, description="Seconds to fetch one web page or feed, at most."
    )
    fetch_concurrency: int = Field(
        default=4, ge=1, le=16, description="Web pages fetched at once during an ingest."
    )
    max_page_mb: float = Field(
        default=10.0, gt=0, description="Largest web page or feed ingest downloads, in MB."
    )
    fetch_allow_private: bool = Field(
        default=False,
        description="Let feed links and redirects reach loopback, private and link-local "
        "addresses on other hosts than the feed's own (URLs given on the command line are "
        "always fetched).",
    )
    fetch_host_delay: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="Seconds between two requests to one host, which never gets more than one "
        "at a time; a longer Crawl-delay in its robots.txt wins.",
    )
    refetch: bool = Field(
        default=False,
        description="Fetch every feed and page again instead of asking only for what changed "
        "since the last run (what is fetched is still remembered).",
    )
    k: int = Field(default=5, ge=1, le=100, description="Passages retrieved per question.")
    retrieval: Literal["hybrid", "dense", "keyword"] = Field(
        default="hybrid",
        description="Search by meaning and keywords fused (hybrid), or by one of them alone.",
    )
    llm: str = Field(
        default="auto",
        description="Answerer: auto (openai when a key or base URL is set, else extractive), "
        "extractive, openai, local, or any LangChain chat model as provider:model.",
    )
    model: str | None = Field(default=None, description="Chat model name or GGUF path.")
    local_model: Path | None = Field(default=None, description="GGUF file for the local answerer.")
    base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("base_url", "QA_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible server.",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a server's reply may take, from connecting to its last byte, "
        "streamed or not; with retries a model's reply is waited for at most this times "
        "(max_retries + 1).",
    )
    max_retries: int = Field(default=2, ge=0, description="Retries for transient server errors.")
    max_reply_kb: float = Field(
        default=256.0,
        gt=0,
        description="Largest reply read from a model server, in KB: the body an "
        "OpenAI-compatible server sends (streamed or not), or another provider's text. An "
        "answer of at most 300 tokens is a few KB, and some 100 KB as a stream of chunks; a "
        "server that ignores the token limit is cut off here.",
    )

    @field_validator("home", "model_cache", mode="before")
    @classmethod
    def empty_path_is_unset(cls, value: object) -> object:
        # `QA_HOME=` in a shell means "not set", not "the current directory".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("home", "model_cache")
    @classmethod
    def folder_or_nothing_yet(cls, value: Path | None) -> Path | None:
        if value is not None and value.expanduser().exists() and not value.expanduser().is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @field_validator("llm")
    @classmethod
    def answerer_or_provider_model(cls, value: str) -> str:
        # Whether a name is one of qa's answerers is for qa.answerers, where they are declared.
        if ANSWERER_NAME.fullmatch(value) or provider_model(value):
            return value
        raise ValueError(
            f"{value!r} is neither an answerer (such as auto or extractive) nor a LangChain "
            "chat model as provider:model (e.g. anthropic:claude-sonnet-4-5, ollama:llama3.2)"
        )

    @model_validator(mode="after")
    def overlap_below_size(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        return self

    @property
    def data_dir(self) -> Path:
        """Where the embedded store and REPL history live."""
        if self.home is not None:
            return self.home.expanduser()
        from platformdirs import user_data_dir

        return Path(user_data_dir("qa", appauthor=False))

    @property
    def langchain_model(self) -> tuple[str, str] | None:
        """(provider, model) when `llm` names a LangChain chat model, else None."""
        return provider_model(self.llm)

    @property
    def model_cache_dir(self) -> Path:
        return self.model_cache.expanduser() if self.model_cache else self.data_dir / "models"

    @property
    def embedding_model_name(self) -> str:
        """The embedding model in force, with the provider's default filled in."""
        return self.embedding_model or DEFAULT_EMBEDDING_MODELS[self.embeddings]


def debug_enabled() -> bool:
    """QA_DEBUG=1: show the traceback of an unexpected error instead of one line."""
    return os.environ.get("QA_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (non-None) flag values on top."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def provider_model(llm: str) -> tuple[str, str] | None:
    """(provider, model) of a LangChain `provider:model`, else None."""
    found = PROVIDER_MODEL.fullmatch(llm)
    # Spelled as LangChain looks it up, so `OpenAI:` and `openai:` are one provider.
    return (found[1].replace("-", "_").lower(), found[2]) if found else None
