"""`qa mcp`: ask, search and sources as tools for AI agents, over MCP on stdin/stdout."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from qa.errors import QAError
from qa.settings import Settings
from qa.workspace import Workspace

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

INSTRUCTIONS = (
    "These tools answer questions from a collection of news articles, and every answer cites "
    "the exact passages it rests on. Prefer them to your own knowledge for anything the "
    "articles may cover, and quote their citations. When `ask` abstains, the articles do not "
    "hold the answer: say so rather than guessing."
)
ASK = (
    "Answer a factual question from the news articles, with citations. Use it for questions "
    "about events, people, places, numbers or dates the articles may report. Returns the "
    "answer (`answer`, and `short_answer` when one name, number or date answers it), whether "
    "it abstained (`abstained`: the articles do not say; do not guess then), `citations` "
    "(each `[n]` in the answer: article id, title, date, url, the verbatim `quote` and its "
    "`start`/`end` offsets in the article) and the `passages` it was written from."
)
SEARCH = (
    "Find the passages of the news articles that best match a query, without writing an "
    "answer. Use it to gather evidence to read and weigh yourself, to check a claim, or when "
    "a question needs several passages combined. Each passage has its rank, article id, "
    "title, date, score (cosine similarity), text and `start`/`end` offsets in the article."
)
SOURCES = (
    "List the articles in the collection: id, title, date, source, url and number of chunks, "
    "newest first. Use it to learn what the collection covers (topics, date range) before "
    "asking, or to find an article's id; it reads no article text."
)

Question = Annotated[str, Field(description="The question, in plain words.")]
Query = Annotated[str, Field(description="What to look for: a question or keywords.")]
Passages = Annotated[
    int | None, Field(ge=1, le=100, description="Passages to retrieve (default: the server's k).")
]
AsOf = Annotated[
    date | None,
    Field(description="Only use articles published on or before this date (YYYY-MM-DD)."),
]


def serve(settings: Settings) -> None:
    """Answer MCP requests on stdin/stdout until the client closes them; logs go to stderr."""
    from qa.rendering import stderr_console

    stderr_console().print(
        f"[dim]qa mcp: collection {settings.store.collection!r} at "
        f"{settings.store.chroma_url or settings.store.data_dir}, on stdin/stdout[/]"
    )
    build_server(settings).run("stdio")


def build_server(settings: Settings) -> "MCPServer":
    """An MCP server whose tools share one store, embedding model and answerer."""
    from mcp.server.mcpserver import MCPServer

    workspace = Workspace(settings)
    # Warnings only: stderr is where a client such as Claude Desktop keeps the server's log.
    server = MCPServer("qa", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(description=ASK)
    def ask(question: Question, k: Passages = None, as_of: AsOf = None) -> dict[str, Any]:
        with lent(workspace) as opened:
            when = as_of and as_of.isoformat()
            answer = opened.ask(question, k=k, as_of=when, stream=False).answer()
        return answer.to_json()

    @server.tool(description=SEARCH)
    def search(query: Query, k: Passages = None, as_of: AsOf = None) -> dict[str, Any]:
        with lent(workspace) as opened:
            passages = opened.search(query, k, as_of and as_of.isoformat())
        return {"query": query, "passages": [passage.to_json() for passage in passages]}

    @server.tool(description=SOURCES)
    def sources() -> dict[str, Any]:
        with lent(workspace) as opened:
            records = opened.sources()
        return {
            "collection": settings.store.collection,
            "articles": [record.to_json() for record in records],
        }

    return server


@contextmanager
def lent(workspace: Workspace) -> Iterator[Workspace]:
    """The workspace for one tool call at a time (the SDK runs each in a thread of its own);
    a qa error becomes the tool's error message, for the agent to read."""
    from mcp.server.mcpserver.exceptions import ToolError

    with workspace.lent():
        try:
            yield workspace
        except QAError as error:
            raise ToolError(str(error)) from error
