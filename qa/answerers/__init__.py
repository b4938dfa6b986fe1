"""Every answerer qa offers: the entry points of the group `qa.answerers`, qa's own included.

Each names a `Kind` (its `--llm` name, what it is, how it is built). qa declares its own in
pyproject.toml, one module of this package each; another distribution adds one the same way:

    [project.entry-points."qa.answerers"]
    topstory = "qa_topstory:KIND"

Settings, `--help`, `qa ask`, chat and eval follow. Any LangChain chat model is available
besides them, as `provider:model`.
"""

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from qa.answerers.kind import Kind

if TYPE_CHECKING:
    from qa.embeddings import Embedder
    from qa.settings import Settings
    from qa.types import Answerer

GROUP = "qa.answerers"
# qa's own distribution: its answerers come first, and no other package can take their names.
DISTRIBUTION = "qa-news"


@cache
def registered() -> dict[str, EntryPoint]:
    """Every answerer's entry point by name: qa's own, then other packages', each in name
    order. Nothing is imported: a plugin is loaded only when it is chosen."""
    found: dict[str, EntryPoint] = {}
    for entry in sorted(entry_points(group=GROUP), key=lambda e: (not is_own(e), e.name)):
        found.setdefault(entry.name, entry)
    return found


def names() -> tuple[str, ...]:
    """`auto`, then every registered answerer."""
    return ("auto", *registered())


def passed_over(settings: "Settings") -> list[str]:
    """Why the answerers other packages register under the chosen one's name are not used:
    one line each, to be shown beside the answer."""
    name = chosen(settings)
    used = registered().get(name)
    return [
        f"The answerer {name!r} of {distribution(entry)} is not used: "
        f"{distribution(used)} registers that name first."
        for entry in entry_points(group=GROUP, name=name)
        if used is not None and distribution(entry) != distribution(used)
    ]


def chosen(settings: "Settings") -> str:
    """The answerer `settings.llm.name` names; `auto` is openai when a key or base URL is
    configured, else extractive."""
    if settings.llm.name != "auto":
        return settings.llm.name
    key = settings.llm.api_key
    return "openai" if (key and key.get_secret_value()) or settings.llm.base_url else "extractive"


def check_choice(settings: "Settings") -> None:
    """Refuse an answerer name qa does not have, before any work is done."""
    from qa.errors import InputError

    if settings.llm.name not in names() and settings.llm.langchain_model is None:
        raise InputError(
            f"{settings.llm.name!r} is not an answerer: use {', '.join(names())}, or a LangChain "
            "chat model as provider:model (e.g. anthropic:claude-sonnet-4-5, ollama:llama3.2)."
        )


def build_answerer(settings: "Settings", embedder: "Embedder") -> "Answerer":
    """The answerer the settings name."""
    check_choice(settings)
    named = settings.llm.langchain_model
    if named is None:
        return kind(chosen(settings)).build(settings, embedder)
    from qa.llm.answerer import GenerativeAnswerer
    from qa.llm.clients import LangChainChat

    provider, model = named
    if provider == "openai":
        # `openai:MODEL` is `--llm openai --model MODEL`: the same key, server and limits.
        return kind("openai").build(settings, embedder)
    return GenerativeAnswerer(LangChainChat(provider, model, settings), settings)


def kind(name: str) -> Kind:
    """The registered answerer `name`, imported now. A package that cannot give one is a
    one-line error naming it; the other answerers are not touched."""
    from qa.errors import QAError

    entry = registered()[name]
    problem = f"The answerer {name!r} of {distribution(entry)} cannot be loaded"
    hint = "Reinstall or remove that package, or choose another --llm."
    try:
        declared = entry.load()
    except Exception as error:  # a plugin's import can fail in any way at all
        raise QAError(f"{problem}: {type(error).__name__}: {error}.", hint) from None
    if not isinstance(declared, Kind):
        raise QAError(f"{problem}: {entry.value} is not a qa.answerers.kind.Kind.", hint)
    return declared


def is_own(entry: EntryPoint) -> bool:
    return entry.dist is not None and entry.dist.name == DISTRIBUTION


def distribution(entry: EntryPoint | None) -> str:
    """`name version` of the package that registered `entry`."""
    if entry is None or entry.dist is None:
        return "an unknown package"
    return f"{entry.dist.name} {entry.dist.version}"
