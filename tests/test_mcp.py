"""`qa mcp`: an MCP server on stdin/stdout, driven by the MCP SDK's own stdio client."""

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from qa.loading import load_articles
from tests.conftest import KREMLIN_QUESTION, SEED_ARTICLE

TOOLS = {"ask", "search", "sources"}


def call_server(home: Path, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list, list]:
    """Start `qa mcp --home HOME`, list its tools, make `calls`; the tools and the results.

    Fails if the server wrote anything on stdout that is not a protocol message.
    """
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = StdioServerParameters(
        command=sys.executable, args=["-m", "qa", "mcp", "--home", str(home), "--k", "3"]
    )
    not_protocol: list[Exception] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            not_protocol.append(message)

    async def session() -> tuple[list, list]:
        async with (
            stdio_client(server) as (read, write),
            ClientSession(read, write, message_handler=on_message) as client,
        ):
            await client.initialize()
            tools = (await client.list_tools()).tools
            results = [await client.call_tool(name, arguments) for name, arguments in calls]
        return tools, results

    tools, results = asyncio.run(session())
    assert not not_protocol, not_protocol
    return tools, results


def named_fields(description: str) -> set[str]:
    """The names a tool's description puts in backticks."""
    return set(re.findall(r"`(\w+)`", description))


def fields_of(data: Any) -> set[str]:
    """Every key of `data`'s objects, at any depth."""
    if isinstance(data, list):
        return set().union(*map(fields_of, data))
    if isinstance(data, dict):
        return set(data).union(*map(fields_of, data.values()))
    return set()


def seeded_home() -> Path:
    return Path(os.environ["QA_HOME"])


def text_json(result: Any) -> Any:
    """The JSON a tool result carries as text, checked against its structured twin."""
    assert not result.is_error, result.content
    (content,) = result.content
    data = json.loads(content.text)
    assert data == result.structured_content
    return data


def test_mcp_tools_answer_search_and_list_like_the_cli(seeded):
    tools, (asked, searched, listed) = call_server(
        seeded_home(),
        [
            ("ask", {"question": KREMLIN_QUESTION}),
            ("search", {"query": "Kurt Volker visit to Moscow", "k": 2}),
            ("sources", {}),
        ],
    )
    assert {tool.name for tool in tools} == TOOLS
    # An agent reads the descriptions to know what to pass and what it gets back: every
    # argument is explained, and every field a description names is in the tool's result.
    results = {"ask": asked, "search": searched, "sources": listed}
    for tool in tools:
        arguments = tool.input_schema["properties"].values()
        assert all(argument.get("description") for argument in arguments), tool.name
        assert named_fields(tool.description) <= fields_of(text_json(results[tool.name]))
    asks = next(tool for tool in tools if tool.name == "ask")
    assert set(asks.input_schema["properties"]) == {"question", "k", "as_of"}
    assert {"abstained", "citations", "quote", "start", "end"} <= named_fields(asks.description)

    cli_answer = json.loads(seeded("ask", KREMLIN_QUESTION, "--k", "3", "--json").stdout)
    assert text_json(asked) == cli_answer

    article = load_articles([SEED_ARTICLE]).articles[0]
    passages = text_json(searched)["passages"]
    assert [passage["rank"] for passage in passages] == [1, 2]
    for passage in passages:
        assert article.text[passage["start"] : passage["end"]] == passage["text"]

    cli_sources = json.loads(seeded("sources", "--json").stdout)
    assert text_json(listed) == {"collection": "default", "articles": cli_sources}


def test_mcp_tool_errors_are_messages_for_the_agent(seeded):
    _, (empty_question, bad_date) = call_server(
        seeded_home(),
        [("ask", {"question": "  "}), ("search", {"query": "Volker", "as_of": "2017-02-30"})],
    )
    assert empty_question.is_error and "The question is empty" in empty_question.content[0].text
    assert bad_date.is_error and "as_of" in bad_date.content[0].text


def test_mcp_before_any_ingest_says_how_to_ingest(tmp_path):
    _, (listed,) = call_server(tmp_path / "empty-home", [("sources", {})])
    assert listed.is_error
    assert "Nothing has been ingested" in listed.content[0].text
    assert "qa ingest" in listed.content[0].text


def test_mcp_with_a_malformed_option_is_one_line_and_never_starts(run):
    result = run("mcp", "--llm", "nonsense")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "provider:model" in result.stderr
