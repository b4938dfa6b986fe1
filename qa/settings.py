"""One settings object, read from flags and `QA_*` environment variables.

`Settings` holds a section per room (store, chunking, embeddings, llm, fetch), each reading
its own variables, and the retrieval options every command shares. Each default is written
once, here. Flags are given by their names (`get_settings(home=..., chunk_size=...)`), which
are also the variables' names without `QA_`.
"""

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic import model_validator as after_validation
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_EMBEDDING_MODELS = {
    "local": "all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
}
# LangChain's `provider:model` (`anthropic:claude-sonnet-4-5`, `ollama:llama3.2:3b`): the
# provider is a plain name; the model is whatever follows the first colon, without spaces.
PROVIDER_MODEL = re.compile(r"([A-Za-z][\w-]*):(\S+)")
ANSWERER_NAME = re.compile(r"[a-z][a-z_-]*")
# API keys other providers read from the environment (ANTHROPIC_API_KEY, GROQ_API_KEY, …):
# never printed.
SECRET_SUFFIX = "_API_KEY"


def empty_is_unset(value: object) -> object:
    # `QA_HOME=` in a shell means "not set", not "the current directory".
    return None if isinstance(value, str) and not value.strip() else value


def folder_or_nothing(value: Path | None) -> Path | None:
    if value is not None and value.expanduser().exists() and not value.expanduser().is_dir():
        raise ValueError(f"{value} is not a directory")
    return value


# A folder qa makes when it needs it: unset when empty, refused when a file is in its place.
Folder = Annotated[Path | None, BeforeValidator(empty_is_unset), AfterValidator(folder_or_nothing)]


def section(prefix: str = "QA_") -> SettingsConfigDict:
    # populate_by_name: a section is also made from its fields' own names (flags, tests).
    return SettingsConfigDict(env_prefix=prefix, extra="forbid", frozen=True, populate_by_name=True)


def variable(name: str, *others: str) -> Any:
    """A field read from the variable `name` (and `others`), whatever the section's prefix."""
    return AliasChoices(name, *others)


class StoreSettings(BaseSettings):
    """Where the articles are kept."""

    model_config = section()

    home: Folder = Field(
        default=None,
        description="Data directory for the embedded store and history (default: per-user dir).",
    )
    collection: str = Field(default="default", description="Chroma collection name.")
    chroma_url: str | None = Field(
        default=None, description="URL of a Chroma server; unset means the embedded store."
    )
    chroma_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a Chroma server's reply may take, whole."
    )

    @property
    def data_dir(self) -> Path:
        """Where the embedded store and REPL history live."""
        if self.home is not None:
            return self.home.expanduser()
        from platformdirs import user_data_dir

        return Path(user_data_dir("qa", appauthor=False))


class ChunkSettings(BaseSettings):
    """How articles are cut, and whether each chunk is embedded under its title and date."""

    model_config = section("QA_CHUNK_")

    size: int = Field(default=900, ge=100, description="Longest chunk, in characters.")
    overlap: int = Field(
        default=150, ge=0, description="Characters of context repeated between chunks, at most."
    )
    header: bool = Field(
        default=False, description="Embed each chunk under its article's title and date."
    )

    @after_validation(mode="after")
    def overlap_below_size(self) -> "ChunkSettings":
        if self.overlap >= self.size:
            raise ValueError(
                f"chunk_overlap ({self.overlap}) must be smaller than chunk_size ({self.size})"
            )
        return self

    def as_metadata(self) -> dict[str, int | bool]:
        """As a collection records them: a store is searched with the chunking it was cut by."""
        return {"chunk_size": self.size, "chunk_overlap": self.overlap, "chunk_header": self.header}


class EmbeddingSettings(BaseSettings):
    """The embedding model, and the server it runs on when it is not the bundled one."""

    model_config = section("QA_EMBEDDING_")

    provider: Literal["local", "openai"] = Field(
        default="local",
        validation_alias=variable("QA_EMBEDDINGS"),
        description="Embedding provider: bundled local model or OpenAI.",
    )
    model: str | None = Field(
        default=None, description="Embedding model name (default depends on the provider)."
    )
    backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="How the local model runs: onnx (ONNX Runtime; its graph built once into "
        "the model cache) or torch (sentence-transformers, the [torch] extra).",
    )
    model_cache: Folder = Field(
        default=None,
        validation_alias=variable("QA_MODEL_CACHE"),
        description="Where derived model files (the ONNX graph) are kept (default: <home>/models).",
    )
    base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible embeddings server, for "
        "QA_EMBEDDINGS=openai (default: the chat model's server, --base-url).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="API key of the embeddings server (default: OPENAI_API_KEY, when the "
        "embeddings come from the chat model's server or the OpenAI API).",
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="Embedding requests in flight.")
    # Text Embeddings Inference refuses more than 32 texts a request unless told otherwise.
    batch_size: int = Field(default=32, ge=1, le=2048, description="Texts per embedding request.")

    @property
    def model_name(self) -> str:
        """The embedding model in force, with the provider's default filled in."""
        return self.model or DEFAULT_EMBEDDING_MODELS[self.provider]


class LLMSettings(BaseSettings):
    """The answerer, and the model server a generative one talks to."""

    model_config = section()

    name: str = Field(
        default="auto",
        validation_alias=variable("QA_LLM"),
        description="Answerer: auto (openai when a key or base URL is set, else extractive), "
        "extractive, openai, local, or any LangChain chat model as provider:model.",
    )
    model: str | None = Field(default=None, description="Chat model name or GGUF path.")
    local_model: Path | None = Field(default=None, description="GGUF file for the local answerer.")
    base_url: str | None = Field(
        default=None,
        validation_alias=variable("QA_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible server.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=variable("OPENAI_API_KEY"),
        description="Key for OpenAI or the OpenAI-compatible server (read from OPENAI_API_KEY).",
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

    @field_validator("name")
    @classmethod
    def answerer_or_provider_model(cls, value: str) -> str:
        # Whether a name is one of qa's answerers is for qa.answerers, where they are declared.
        if ANSWERER_NAME.fullmatch(value) or provider_model(value):
            return value
        raise ValueError(
            f"{value!r} is neither an answerer (such as auto or extractive) nor a LangChain "
            "chat model as provider:model (e.g. anthropic:claude-sonnet-4-5, ollama:llama3.2)"
        )

    @property
    def langchain_model(self) -> tuple[str, str] | None:
        """(provider, model) when `name` is a LangChain chat model, else None."""
        return provider_model(self.name)


class FetchSettings(BaseSettings):
    """How web pages and feeds are fetched."""

    model_config = section("QA_FETCH_")

    timeout: float = Field(
        default=20.0, gt=0, description="Seconds to fetch one web page or feed, at most."
    )
    concurrency: int = Field(
        default=4, ge=1, le=16, description="Web pages fetched at once during an ingest."
    )
    max_page_mb: float = Field(
        default=10.0,
        gt=0,
        validation_alias=variable("QA_MAX_PAGE_MB"),
        description="Largest web page or feed ingest downloads, in MB.",
    )
    allow_private: bool = Field(
        default=False,
        description="Let feed links and redirects reach loopback, private and link-local "
        "addresses on other hosts than the feed's own (URLs given on the command line are "
        "always fetched).",
    )
    host_delay: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="Seconds between two requests to one host, which never gets more than one "
        "at a time; a longer Crawl-delay in its robots.txt wins.",
    )
    refetch: bool = Field(
        default=False,
        validation_alias=variable("QA_REFETCH"),
        description="Fetch every feed and page again instead of asking only for what changed "
        "since the last run (what is fetched is still remembered).",
    )


SECTIONS: dict[str, type[BaseSettings]] = {
    "store": StoreSettings,
    "chunking": ChunkSettings,
    "embeddings": EmbeddingSettings,
    "llm": LLMSettings,
    "fetch": FetchSettings,
}
# A flag's name (and its variable's, without QA_) → (section, field). The retrieval options
# (k, retrieval) and max_article_mb belong to no one room and sit on Settings itself.
FLAGS: dict[str, tuple[str, str]] = {
    "home": ("store", "home"),
    "collection": ("store", "collection"),
    "chroma_url": ("store", "chroma_url"),
    "chunk_size": ("chunking", "size"),
    "chunk_overlap": ("chunking", "overlap"),
    "chunk_header": ("chunking", "header"),
    "embeddings": ("embeddings", "provider"),
    "embedding_model": ("embeddings", "model"),
    "embedding_backend": ("embeddings", "backend"),
    "model_cache": ("embeddings", "model_cache"),
    "embedding_base_url": ("embeddings", "base_url"),
    "embedding_api_key": ("embeddings", "api_key"),
    "embedding_concurrency": ("embeddings", "concurrency"),
    "embedding_batch_size": ("embeddings", "batch_size"),
    "llm": ("llm", "name"),
    "model": ("llm", "model"),
    "local_model": ("llm", "local_model"),
    "base_url": ("llm", "base_url"),
    "openai_api_key": ("llm", "api_key"),
    "temperature": ("llm", "temperature"),
    "timeout": ("llm", "timeout"),
    "max_retries": ("llm", "max_retries"),
    "max_reply_kb": ("llm", "max_reply_kb"),
    "fetch_timeout": ("fetch", "timeout"),
    "fetch_concurrency": ("fetch", "concurrency"),
    "max_page_mb": ("fetch", "max_page_mb"),
    "fetch_allow_private": ("fetch", "allow_private"),
    "fetch_host_delay": ("fetch", "host_delay"),
    "refetch": ("fetch", "refetch"),
}


class Settings(BaseSettings):
    """Everything qa can be configured with; built once and passed down."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="forbid", frozen=True)

    store: StoreSettings = Field(default_factory=StoreSettings)
    chunking: ChunkSettings = Field(default_factory=ChunkSettings)
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    k: int = Field(default=5, ge=1, le=100, description="Passages retrieved per question.")
    retrieval: Literal["hybrid", "dense", "keyword"] = Field(
        default="hybrid",
        description="Search by meaning and keywords fused (hybrid), or by one of them alone.",
    )
    max_article_mb: float = Field(
        default=5.0,
        gt=0,
        description="Largest article (a file, or a .jsonl record) ingest accepts, in MB.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, OwnVariables(settings_cls)

    @property
    def model_cache_dir(self) -> Path:
        cache = self.embeddings.model_cache
        return cache.expanduser() if cache else self.store.data_dir / "models"

    def with_flags(self, **flags: object) -> "Settings":
        """These settings with some flags' values changed (None: left as they are)."""
        given = {name: value for name, value in flags.items() if value is not None}
        if not given:
            return self
        sections, top = split_flags(given)
        changed = {
            name: SECTIONS[name](**{**getattr(self, name).model_dump(by_alias=False), **values})
            for name, values in sections.items()
        }
        return self.model_copy(update={**changed, **top})

    def to_json(self) -> dict[str, Any]:
        """Every setting by its flag's name, secrets left out: what a report records."""
        found: dict[str, Any] = {"k": self.k, "retrieval": self.retrieval}
        found["max_article_mb"] = self.max_article_mb
        for flag, (name, field) in FLAGS.items():
            value = getattr(getattr(self, name), field)
            if not isinstance(value, SecretStr):
                found[flag] = str(value) if isinstance(value, Path) else value
        return found


class OwnVariables(EnvSettingsSource):
    """The variables of Settings' own fields: a section reads its own (QA_LLM is the
    answerer's name, not the llm section as JSON)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in SECTIONS:
            return None, field_name, False
        return super().get_field_value(field, field_name)


def split_flags(flags: dict[str, object]) -> tuple[dict[str, dict[str, object]], dict]:
    """Flag values by section, and those of Settings itself."""
    sections: dict[str, dict[str, object]] = {}
    top: dict[str, object] = {}
    for flag, value in flags.items():
        if flag in FLAGS:
            name, field = FLAGS[flag]
            sections.setdefault(name, {})[field] = value
        elif flag in Settings.model_fields and flag not in SECTIONS:
            top[flag] = value
        else:
            raise TypeError(f"no setting is called {flag!r}")
    return sections, top


def get_settings(**flags: object) -> Settings:
    """Settings from the environment, with the flags given (non-None) on top."""
    sections, top = split_flags({name: value for name, value in flags.items() if value is not None})
    built = {name: kind(**sections.get(name, {})) for name, kind in SECTIONS.items()}
    return Settings(**built, **top)


def debug_enabled() -> bool:
    """QA_DEBUG=1: show the traceback of an unexpected error instead of one line."""
    return os.environ.get("QA_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline() -> None:
    """Tell Hugging Face's libraries (the torch backend's) never to reach the hub: the model is
    bundled, and a missing file must fail at once rather than download."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def environment_secrets() -> tuple[str, ...]:
    """Every API key set in the environment, as it would be sent: what is never printed."""
    return tuple(
        value.strip()
        for name, value in os.environ.items()
        if name.endswith(SECRET_SUFFIX) and value.strip()
    )


def provider_model(llm: str) -> tuple[str, str] | None:
    """(provider, model) of a LangChain `provider:model`, else None."""
    found = PROVIDER_MODEL.fullmatch(llm)
    # Spelled as LangChain looks it up, so `OpenAI:` and `openai:` are one provider.
    return (found[1].replace("-", "_").lower(), found[2]) if found else None


def problems(error: ValidationError) -> str:
    """A settings error in one line, each field named as its flag (or variable) is."""
    named = {(name, field): flag for flag, (name, field) in FLAGS.items()}
    title = error.title
    section_name = next((n for n, cls in SECTIONS.items() if cls.__name__ == title), None)
    parts = []
    for problem in error.errors():
        location = tuple(map(str, problem["loc"]))
        if section_name and location:
            location = (named.get((section_name, location[0]), location[0]), *location[1:])
        parts.append(f"{'.'.join(location) or 'settings'}: {problem['msg']}")
    return "; ".join(parts)
