"""`--llm provider:model`: any chat model LangChain's init_chat_model builds."""

import json
import sys

import pytest

from tests.conftest import KREMLIN_QUESTION
from tests.servers import SERVED_MODEL
from tests.test_llm import CITING_QUESTION, assert_citations_check_out, assert_one_line_error


@pytest.mark.server
@pytest.mark.llm
def test_openai_provider_model_answers_from_a_llama_server_with_checked_citations(
    seeded, llama_server
):
    result = seeded("ask", CITING_QUESTION, "--llm", f"openai:{SERVED_MODEL}",
                    "--base-url", llama_server, "--k", "3", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["answerer"], answer["model"]) == ("openai", SERVED_MODEL)
    assert answer["citations"], answer["answer"]
    assert_citations_check_out(answer)


@pytest.mark.server
@pytest.mark.llm
def test_provider_model_from_the_environment_names_provider_and_model_in_the_byline(
    seeded, llama_server, monkeypatch
):
    monkeypatch.setenv("QA_LLM", f"openai:{SERVED_MODEL}")
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    result = seeded("ask", KREMLIN_QUESTION, "--k", "3", "--no-stream")
    assert result.exit_code == 0, result.output
    assert f"answered by openai ({SERVED_MODEL})" in result.stdout


def test_a_provider_whose_package_is_missing_is_one_line_naming_the_package(seeded, monkeypatch):
    # Whatever this machine has installed, the provider's package cannot be imported here.
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)
    result = seeded("ask", KREMLIN_QUESTION, "--llm", "anthropic:claude-x")
    assert_one_line_error(result, "langchain-anthropic", "pip install langchain-anthropic")


def test_a_provider_langchain_does_not_know_is_a_usage_error(seeded):
    result = seeded("ask", KREMLIN_QUESTION, "--llm", "nosuchprovider:some-model")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "'nosuchprovider'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["nonsense", "openai:", ":gpt-4o", "openai:gpt 4o"])
def test_a_malformed_llm_value_says_what_is_accepted(seeded, value):
    result = seeded("ask", KREMLIN_QUESTION, "--llm", value)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "provider:model" in result.stderr and "extractive" in result.stderr
    assert "Traceback" not in result.stderr
