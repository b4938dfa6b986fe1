import json

import pytest

from tests.conftest import KREMLIN_QUESTION, SEEDS
from tests.servers import free_port

pytestmark = pytest.mark.server


def test_ingest_and_ask_against_a_chroma_server(run, chroma_server):
    ingested = run("ingest", SEEDS, "--chroma-url", chroma_server, "--collection", "srv", "--json")
    assert ingested.exit_code == 0, ingested.output
    again = json.loads(
        run("ingest", SEEDS, "--chroma-url", chroma_server, "-c", "srv", "--json").stdout
    )
    assert again["unchanged"] == ["000_0ae6590b4ea8367e"]
    result = run("ask", KREMLIN_QUESTION, "--chroma-url", chroma_server, "-c", "srv", "--json")
    assert result.exit_code == 0, result.output
    assert "755" in json.loads(result.stdout)["answer"]
    listed = json.loads(run("sources", "--chroma-url", chroma_server, "-c", "srv", "--json").stdout)
    assert [a["id"] for a in listed] == ["000_0ae6590b4ea8367e"]


def test_unreachable_chroma_server_is_one_clear_line(run):
    url = f"http://127.0.0.1:{free_port()}"
    result = run("ingest", SEEDS, "--chroma-url", url)
    assert result.exit_code == 1
    assert f"Cannot reach the Chroma server at {url}" in result.stderr
    assert "Traceback" not in result.output
