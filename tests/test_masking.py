import json

import pytest

from qa.masking import mask_secrets, masked_stream
from tests.conftest import KREMLIN_QUESTION
from tests.servers import SERVED_MODEL, free_port, serve_scripted

KEY = "sk-test-0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:pw@host:8000/x", "http://***@host:8000/x"),
        ("GET http://h/v1?api-key=abc123&model=m", "GET http://h/v1?api-key=***&model=m"),
        ("https://h/v1?model=m&access_token=t0k3n", "https://h/v1?model=m&access_token=***"),
        ("https://h/v1?sig=xyz#frag", "https://h/v1?sig=***#frag"),
        ("http://host:8000/v1?model=gpt", "http://host:8000/v1?model=gpt"),
    ],
)
def test_credentials_in_urls_are_masked_and_the_rest_kept(text, shown):
    assert mask_secrets(text) == shown


def test_the_configured_key_is_masked_even_when_a_stream_splits_it(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    pieces = ["Your key is sk-te", "st-0123", "456789abcdef, as sent", "."]
    assert "".join(masked_stream(pieces)) == "Your key is ***, as sent."
    assert mask_secrets(f"echo {KEY}") == "echo ***"


def test_errors_never_print_a_password_or_a_key_in_a_url(seeded):
    port = free_port()
    result = seeded("ask", KREMLIN_QUESTION, "--llm", "openai", "--model", SERVED_MODEL,
                    "--base-url", f"http://127.0.0.1:{port}/v1?api-key=topsecret99")  # fmt: skip
    assert result.exit_code != 0
    assert "topsecret99" not in result.output and "api-key=***" in result.stderr
    stored = seeded("sources", "--chroma-url", f"http://admin:hunter2hunter2@127.0.0.1:{port}")
    assert stored.exit_code != 0
    assert "hunter2" not in stored.output and "http://***@127.0.0.1" in stored.stderr


def test_a_reply_that_echoes_the_key_is_shown_masked(seeded, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    reply = f"The Kremlin said 755 people must go [1]. Your key is {KEY}."
    with serve_scripted([(200, reply)]) as server:
        result = seeded("ask", KREMLIN_QUESTION, "--llm", "openai", "--base-url", server.url,
                        "--model", SERVED_MODEL, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert KEY not in result.output
    assert json.loads(result.stdout)["answer"].endswith("Your key is ***.")
