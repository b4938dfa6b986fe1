import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from qa.answerers import build_answerer
from qa.answering import Assistant
from qa.citations import checked_answer
from qa.embeddings import get_embedder
from qa.errors import LLMError
from qa.loading import load_articles
from qa.settings import get_settings
from tests.conftest import KREMLIN_QUESTION, SEED_ARTICLE, smollm2_gguf
from tests.servers import SERVED_MODEL, free_port, serve_http, serve_scripted

pytestmark = pytest.mark.llm
# Asks for a marker outright, so the citation checks below have citations to check.
CITING_QUESTION = "Quote passage [1] and cite it."
WRONG_KEY = "sk-wrong-0123456789abcdef"


def ask_openai(run, base_url: str, *args: str):
    return run("ask", *args, "--llm", "openai", "--base-url", base_url, "--model", SERVED_MODEL,
               "--k", "3")  # fmt: skip


def assert_citations_check_out(answer: dict) -> None:
    article = load_articles([SEED_ARTICLE]).articles[0]
    for citation in answer["citations"]:
        assert article.text[citation["start"] : citation["end"]] == citation["quote"]
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])}
    assert markers == {citation["marker"] for citation in answer["citations"]}
    assert answer["unsupported"] == (not answer["abstained"] and not answer["citations"])


def assert_one_line_error(result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.server
def test_openai_provider_answers_from_a_llama_server_with_checked_citations(seeded, llama_server):
    result = ask_openai(seeded, llama_server, CITING_QUESTION, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["answerer"], answer["model"]) == ("openai", SERVED_MODEL)
    assert len(answer["passages"]) == 3
    assert answer["citations"], answer["answer"]
    assert_citations_check_out(answer)


@pytest.mark.server
def test_base_url_from_the_environment_and_the_byline_name_the_model(
    seeded, llama_server, monkeypatch
):
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    result = seeded("ask", KREMLIN_QUESTION, "--model", SERVED_MODEL, "--k", "3", "--no-stream")
    assert result.exit_code == 0, result.output
    assert f"answered by openai ({SERVED_MODEL})" in result.stdout


@pytest.mark.server
def test_streamed_pieces_are_the_draft_whose_citations_were_checked(seeded, llama_server):
    settings = get_settings(llm="openai", base_url=llama_server, model=SERVED_MODEL, k=3)
    assistant = Assistant.open(settings)
    passages = assistant.retrieve(CITING_QUESTION)
    answering = assistant.answerer.answer(CITING_QUESTION, passages)
    pieces = list(answering)
    answer = answering.answer()
    assert len(pieces) > 1
    draft = "".join(pieces)
    assert answer == checked_answer(CITING_QUESTION, draft, passages, "openai", SERVED_MODEL)


@pytest.mark.server
def test_complete_returns_the_reply_to_one_system_and_user_message(llama_server):
    settings = get_settings(llm="openai", base_url=llama_server, model=SERVED_MODEL)
    answerer = build_answerer(settings, get_embedder(settings))
    reply = answerer.complete("Answer with one word.", "What colour is the sky on a clear day?")
    assert isinstance(reply, str) and reply.strip()


@pytest.mark.server
def test_wrong_api_key_is_one_line_that_never_shows_the_key(
    seeded, llama_server_with_key, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", WRONG_KEY)
    result = ask_openai(seeded, llama_server_with_key, KREMLIN_QUESTION)
    assert_one_line_error(result, "API key was rejected", "OPENAI_API_KEY")
    assert WRONG_KEY not in result.output and "secret" not in result.output


def test_unreachable_base_url_is_one_line_naming_the_url(seeded):
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = ask_openai(seeded, url, KREMLIN_QUESTION)
    assert_one_line_error(result, "cannot reach", url, "server is running")


def test_server_error_is_retried_and_then_answered(seeded, monkeypatch):
    monkeypatch.setenv("QA_MAX_RETRIES", "2")
    reply = "The Kremlin said the U.S. must cut its staff by 755 people [1]."
    with serve_scripted([(503, ""), (200, reply)]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION, "--json")
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 2
    answer = json.loads(result.stdout)
    assert answer["answer"] == reply
    assert "755" in answer["citations"][0]["quote"]
    assert_citations_check_out(answer)


@pytest.mark.parametrize(
    ("status", "attempts", "phrase"),
    [
        (429, 3, "rate limited"),
        (500, 3, "answered HTTP 500"),
        (404, 1, f"model '{SERVED_MODEL}' or the endpoint was not found"),
        (400, 1, "refused the request"),
    ],
)
def test_failures_are_retried_only_when_a_retry_can_help(
    seeded, monkeypatch, status, attempts, phrase
):
    monkeypatch.setenv("QA_MAX_RETRIES", "2")
    monkeypatch.setenv("OPENAI_API_KEY", WRONG_KEY)
    with serve_scripted([(status, "")]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION)
    assert len(server.requests) == attempts
    assert_one_line_error(result, phrase)
    # The server's message quotes the key; qa must not pass it on.
    assert WRONG_KEY not in result.output


def test_local_provider_answers_with_checked_citations(seeded):
    smollm2_gguf()
    result = seeded("ask", KREMLIN_QUESTION, "--llm", "local", "--k", "3", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["answerer"], answer["model"]) == ("local", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert answer["answer"]
    assert_citations_check_out(answer)


def test_local_provider_with_a_missing_model_file_says_what_to_pass(seeded, tmp_path):
    smollm2_gguf()
    missing = tmp_path / "nothing.gguf"
    result = seeded("ask", KREMLIN_QUESTION, "--llm", "local", "--model", missing)
    assert result.exit_code == 2
    assert str(missing) in result.stderr and "GGUF" in result.stderr


def test_llama_cpp_decodes_a_multi_token_prompt(tmp_path):
    # The first multi-token decode is where a build for the wrong CPU crashes; a crash here
    # must fail this test, not the whole suite, so it runs in its own process.
    script = (
        "import sys; from llama_cpp import Llama; "
        "llm = Llama(model_path=sys.argv[1], verbose=False); "
        "print(llm('Hello there, how', max_tokens=8)['choices'][0]['text'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(smollm2_gguf())], capture_output=True, text=True
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.strip()


def test_local_model_keeps_answering_follow_up_questions_in_one_process(seeded):
    smollm2_gguf()
    assistant = Assistant.open(get_settings(llm="local", k=2))
    first = assistant.ask(KREMLIN_QUESTION).answer()
    process = assistant.answerer.chat.runner.process
    second = assistant.ask("Who is Kurt Volker?").answer()
    assert first.text and second.text
    assert assistant.answerer.chat.runner.process is process


def test_a_crashing_model_process_is_an_error_naming_the_portable_build(seeded):
    smollm2_gguf()
    assistant = Assistant.open(get_settings(llm="local", k=2))
    runner = assistant.answerer.chat.runner

    def crash_on_first_piece(piece: str) -> None:
        os.kill(runner.process.pid, signal.SIGSEGV)

    passages = assistant.retrieve(KREMLIN_QUESTION)
    with pytest.raises(LLMError) as caught:
        for piece in assistant.answerer.answer(KREMLIN_QUESTION, passages):
            crash_on_first_piece(piece)
    assert "crashed (SIGSEGV)" in str(caught.value)
    assert "GGML_NATIVE=OFF" in str(caught.value)
    # The next question starts a new model process and is answered.
    assert assistant.ask(KREMLIN_QUESTION).answer().text
    runner.stop()


def test_qa_ask_reports_a_model_process_crash_in_one_line(seeded):
    smollm2_gguf()
    running = model_processes()
    killer = threading.Thread(target=segfault_first_model_process, args=(running,), daemon=True)
    killer.start()
    result = seeded("ask", KREMLIN_QUESTION, "--llm", "local", "--k", "2")
    killer.join()
    assert_one_line_error(result, "model process crashed (SIGSEGV)", "GGML_NATIVE=OFF")


def segfault_first_model_process(running: set[int], seconds: float = 60.0) -> None:
    """Send SIGSEGV to the first new model process that this test process starts."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid in model_processes() - running:
            os.kill(pid, signal.SIGSEGV)
            return
        time.sleep(0.01)


def model_processes() -> set[int]:
    """Children of this process that run qa.local_model."""
    found = set()
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                if b"qa.llm.local_model" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(int(pid))
            except FileNotFoundError:
                pass
    return found


@contextmanager
def serve_broken_stream(requests: list[str]):
    """A chat server that starts a streamed reply, then drops the connection."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": SERVED_MODEL,
             "choices": [{"index": 0, "delta": {"content": "The Kremlin said"},
                          "finish_reason": None}]}  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Handler) as base:
        yield f"{base}/v1"


def test_a_stream_cut_off_midway_says_so_and_is_never_retried(seeded):
    requests: list[str] = []
    with serve_broken_stream(requests) as url:
        settings = get_settings(llm="openai", base_url=url, model=SERVED_MODEL, max_retries=2)
        shown = []
        with pytest.raises(LLMError) as caught:
            for piece in Assistant.open(settings).ask(KREMLIN_QUESTION):
                shown.append(piece)
    assert "".join(shown) == "The Kremlin said"
    assert str(caught.value).startswith(f"openai: the reply from {url} broke off midway.")
    assert "cannot reach" not in str(caught.value)
    # Text was shown already: asking again would show it twice.
    assert len(requests) == 1
