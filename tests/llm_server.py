"""OpenAI-compatible servers on loopback: llama.cpp's real one, and one that replies as scripted."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVED_MODEL = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_llama(gguf: Path, port: int, log_path: Path, *options: str) -> Iterator[str]:
    """`python -m llama_cpp.server` with `gguf` on 127.0.0.1:`port`; yields its /v1 base URL."""
    log = open(log_path, "w")  # noqa: SIM115 - closed when the server stops
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
         "--model_alias", SERVED_MODEL, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "4096", *options],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_answering(base_url + "/models", process, log_path)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait_until_answering(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Until `url` gives any HTTP reply (a 401 from a server that wants a key counts)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"llama_cpp.server did not answer at {url}")


@dataclass
class ScriptedServer:
    """Replies to chat completions with `replies` in turn (the last one repeats)."""

    replies: list[tuple[int, str]]
    requests: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def serve_scripted(replies: list[tuple[int, str]]) -> Iterator[ScriptedServer]:
    """A loopback server whose errors quote the caller's key, as some real servers do."""
    script = ScriptedServer(replies)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            script.requests.append(self.path)
            status, content = script.replies[min(len(script.requests), len(script.replies)) - 1]
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            body = completion(content) if status == 200 else error_body(status, key)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()


def completion(content: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": SERVED_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def error_body(status: int, key: str) -> bytes:
    message = f"HTTP {status} for the request made with key {key}"
    return json.dumps({"error": {"message": message, "type": "error", "code": None}}).encode()
