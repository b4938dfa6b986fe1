"""A model server's reply that is too slow, too long, malformed or cut off: one line, exit 1."""

import json
import os
import subprocess

import pytest

from tests.conftest import KREMLIN_QUESTION
from tests.servers import (
    SERVED_MODEL,
    completion,
    cut_reply,
    event_stream,
    raw_reply,
    reply_ignoring_the_token_limit,
    serve_scripted,
    stream_event,
    streamed_reply,
    trickled_reply,
    venv_tool,
)
from tests.test_llm import ask_openai, assert_one_line_error

# Far longer than any of these commands takes; only a command that never ends gets near it.
OUTER_BOUND_SECONDS = 50
PARTIAL = "The Kremlin said the U.S. must cut"


@pytest.fixture
def terminal(monkeypatch):
    """Output as to a terminal, without colour: answers stream token by token."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")


def qa_process(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`qa ARGS...` in its own process, with `env` added to this one's environment."""
    return subprocess.run(
        [venv_tool("qa"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=OUTER_BOUND_SECONDS,
    )


def ask_command(url: str) -> list[str]:
    return ["ask", KREMLIN_QUESTION, "--llm", "openai", "--base-url", url, "--model",
            SERVED_MODEL, "--k", "3"]  # fmt: skip


def assert_one_line_after_partial_text(result, partial: str, *phrases: str) -> None:
    """Exit 1; the streamed text ends its own line; the error is one line on stderr."""
    code = getattr(result, "returncode", getattr(result, "exit_code", None))
    assert code == 1, result.stderr[-2000:]
    assert result.stdout.startswith(partial) and result.stdout.endswith("\n")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr
    assert "Traceback" not in result.stderr


def test_a_reply_trickled_a_byte_at_a_time_ends_at_the_deadline(seeded):
    body = completion("The Kremlin said 755 people [1].").ljust(1000)
    with serve_scripted([trickled_reply(body, seconds_per_byte=2)]) as server:
        result = qa_process(*ask_command(server.url), QA_TIMEOUT="3", QA_MAX_RETRIES="0")
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"Error: openai: no complete reply from {server.url} within 3s. "
        "Raise QA_TIMEOUT or check the server."
    ]


def test_with_retries_the_deadline_covers_every_attempt_and_says_so(seeded, monkeypatch):
    monkeypatch.setenv("QA_TIMEOUT", "2")
    monkeypatch.setenv("QA_MAX_RETRIES", "1")
    # Some 280 bytes, each read well within QA_TIMEOUT, all of them taking 14s.
    body = completion("The Kremlin said 755 people [1].")
    with serve_scripted([trickled_reply(body, seconds_per_byte=0.05)]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION)
    assert_one_line_error(result, "within 4s (2 attempts of QA_TIMEOUT=2s)")


def test_a_stream_past_the_token_limit_is_cut_off_at_the_size_cap(seeded):
    with serve_scripted([reply_ignoring_the_token_limit(megabytes=3.6)]) as server:
        result = qa_process(*ask_command(server.url), TTY_COMPATIBLE="1", NO_COLOR="1")
    assert_one_line_after_partial_text(
        result,
        "and so on",
        f"openai: the reply from {server.url} grew past 256 KB (QA_MAX_REPLY_KB). "
        "The partial answer above was not checked; the server may be ignoring the token limit.",
    )


def test_a_whole_reply_past_the_size_cap_is_refused(seeded, monkeypatch):
    monkeypatch.setenv("QA_MAX_REPLY_KB", "16")
    with serve_scripted([reply_ignoring_the_token_limit(megabytes=3.6)]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION)
    assert_one_line_error(result, f"the reply from {server.url} grew past 16 KB")


def test_a_stream_that_stops_giving_tokens_ends_at_the_deadline(seeded, monkeypatch, terminal):
    monkeypatch.setenv("QA_TIMEOUT", "2")
    monkeypatch.setenv("QA_MAX_RETRIES", "0")
    slow = streamed_reply([PARTIAL, *[" and"] * 20], seconds_per_piece=1)
    with serve_scripted([slow]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION)
    assert_one_line_after_partial_text(
        result, PARTIAL, f"the reply from {server.url} did not finish within 2s", "not checked"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"this is {not json", "its body is not JSON"),
        (b'{"choices": []}', "it has no choices"),
        (b'{"choices": "abc"}', "it has no choices"),
        (b'{"choices": [{"index": 0, "finish_reason": "stop"}]}', "no message content"),
        (b'{"choices": [{"index": 0, "message": {"role": "assistant"}}]}', "no message content"),
        (b'{"choices": ["abc"]}', "no message content"),
        (b'{"error": {"message": "overloaded"}}', "it has no choices"),
    ],
)
def test_a_successful_reply_that_is_no_chat_completion_is_one_line_naming_the_server(
    seeded, body, reason
):
    with serve_scripted([raw_reply(body)]) as server:
        masked = server.url.replace("http://", "http://***@")
        url = server.url.replace("http://", "http://someone:hunter2-secret@")
        result = ask_openai(seeded, url, KREMLIN_QUESTION)
    assert_one_line_error(
        result, f"the reply from {masked} was not a valid chat completion (", reason
    )
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (b"data: this is {not json\n\n", "a streamed chunk is not JSON"),
        (b'data: {"choices": "abc"}\n\n', "a streamed chunk is malformed"),
        (b'data: {"choices": [{"index": 0, "delta": "abc"}]}\n\n', "a streamed chunk is malformed"),
    ],
)
def test_a_streamed_chunk_that_is_no_chat_completion_chunk_is_one_line(
    seeded, terminal, event, reason
):
    stream = event_stream([stream_event({"content": PARTIAL}, None), event])
    with serve_scripted([stream]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION)
    # The bad chunk may come in one read with the good one before it, which is then not shown.
    assert result.exit_code == 1, result.output
    assert result.stdout in ("", PARTIAL + "\n")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"the reply from {server.url} was not a valid chat completion ({reason})" in (
        result.stderr
    )


def test_a_stream_closed_without_done_or_finish_reason_broke_off_midway(seeded, terminal):
    with serve_scripted([streamed_reply([PARTIAL], finish=False, done=False)]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION)
    assert_one_line_after_partial_text(
        result, PARTIAL, f"the reply from {server.url} broke off midway.", "not checked"
    )


@pytest.mark.parametrize(("finish", "done"), [(True, False), (False, True), (True, True)])
def test_a_stream_with_a_finish_reason_or_done_is_complete(seeded, terminal, finish, done):
    reply = "The Kremlin said the U.S. must cut its staff by 755 people [1]."
    with serve_scripted([streamed_reply([reply], finish=finish, done=done)]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(reply)


def test_a_reply_cut_off_mid_body_says_the_connection_broke_off(seeded, monkeypatch):
    monkeypatch.setenv("QA_MAX_RETRIES", "0")
    with serve_scripted([cut_reply(1000, completion("The Kremlin said")[:100])]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION, "--json")
    assert_one_line_error(result, f"the connection to {server.url} broke off during the reply")
    assert "cannot reach" not in result.stderr


def test_a_cut_reply_is_retried_and_then_answered(seeded, monkeypatch):
    monkeypatch.setenv("QA_MAX_RETRIES", "1")
    reply = "The Kremlin said the U.S. must cut its staff by 755 people [1]."
    cut = cut_reply(1000, completion(reply)[:100])
    with serve_scripted([cut, (200, reply)]) as server:
        result = ask_openai(seeded, server.url, KREMLIN_QUESTION, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answer"] == reply
    assert len(server.requests) == 2
