"""Servers on loopback for tests: Chroma, llama.cpp's OpenAI-compatible one, a scripted one."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

SERVED_MODEL = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(
    command: list[str], log_path: Path, ready: Callable[[], bool], seconds: float, env=None
) -> Iterator[None]:
    """`command` in the background, its output in `log_path`, from when `ready()` until exit."""
    log = open(log_path, "w")  # noqa: SIM115 - closed when the process stops
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + seconds
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited: {log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} was not ready within {seconds}s")
            time.sleep(0.3)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def answers_http(url: str) -> bool:
    """Whether `url` gives any HTTP reply (a 401 from a server that wants a key counts)."""
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextmanager
def serve_llama(gguf: Path, port: int, log_path: Path, *options: str) -> Iterator[str]:
    """`python -m llama_cpp.server` with `gguf` on 127.0.0.1:`port`; yields its /v1 base URL."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
               "--model_alias", SERVED_MODEL, "--host", "127.0.0.1", "--port", str(port),
               "--n_ctx", "4096", *options]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    with running(command, log_path, lambda: answers_http(base_url + "/models"), seconds=120):
        yield base_url


@contextmanager
def serve_chroma(data: Path, port: int) -> Iterator[str]:
    """`chroma run` storing in `data` on 127.0.0.1:`port`; yields its URL."""
    command = [venv_tool("chroma"), "run", "--path", str(data / "db"), "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with running(command, data / "server.log", lambda: port_open(port), seconds=60, env=env):
        yield f"http://127.0.0.1:{port}"


def venv_tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else (shutil.which(name) or name)


# A scripted reply: (status, content) for a chat completion or an error, or a function that
# writes the whole reply itself, given the handler and the request's JSON.
Writer = Callable[[BaseHTTPRequestHandler, dict], None]
Reply = tuple[int, str] | Writer


@dataclass
class ScriptedServer:
    """Replies to chat completions with `replies` in turn (the last one repeats)."""

    replies: list[Reply]
    requests: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def serve_scripted(replies: list[Reply]) -> Iterator[ScriptedServer]:
    """A loopback server whose errors quote the caller's key, as some real servers do."""
    script = ScriptedServer(replies)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(
                self.rfile.read(int(self.headers.get("Content-Length", 0))) or "{}"
            )
            script.requests.append(self.path)
            reply = script.replies[min(len(script.requests), len(script.replies)) - 1]
            if callable(reply):
                # The client may stop reading, as it should from some of these servers.
                with suppress(BrokenPipeError, ConnectionResetError):
                    reply(self, request)
                return
            status, content = reply
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

    with serve_http(Handler) as base:
        script.url = f"{base}/v1"
        yield script


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a free loopback port, each request in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Headers that belong to one hop, which the proxy below does not pass on.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
# Given the handler and the request's body: True when it answered (or dropped) the request.
Intercept = Callable[[BaseHTTPRequestHandler, bytes], bool]


@contextmanager
def serve_proxy(upstream: str, intercept: Intercept) -> Iterator[str]:
    """A loopback proxy to the HTTP server at `upstream` that passes every request on, with
    its headers, but those `intercept` takes; yields its URL."""
    target = urlparse(upstream)

    class Proxy(BaseHTTPRequestHandler):
        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if intercept(self, body):
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            reply = connection.getresponse()
            content = reply.read()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            connection.close()

        do_GET = do_POST = do_PUT = do_DELETE = forward

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Proxy) as url:
        yield url


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


def raw_reply(body: bytes, status: int = 200) -> Writer:
    """A reply of `body` as it is, labelled JSON."""

    def write(handler: BaseHTTPRequestHandler, request: dict) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return write


def cut_reply(declared: int, body: bytes) -> Writer:
    """A reply that announces `declared` bytes, sends `body`, then closes the connection."""

    def write(handler: BaseHTTPRequestHandler, request: dict) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    return write


def trickled_reply(body: bytes, seconds_per_byte: float) -> Writer:
    """A whole reply of `body`, sent one byte at a time, each well within any read timeout."""

    def write(handler: BaseHTTPRequestHandler, request: dict) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for byte in body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(seconds_per_byte)

    return write


def streamed_reply(
    pieces: Iterable[str],
    *,
    finish: bool = True,
    done: bool = True,
    seconds_per_piece: float = 0.0,
) -> Writer:
    """A server-sent event stream of `pieces`, then (unless told not to) a chunk with a
    finish_reason and `data: [DONE]`; it ends by closing the connection."""

    def events() -> Iterator[bytes]:
        for piece in pieces:
            yield stream_event({"content": piece}, None)
            time.sleep(seconds_per_piece)
        if finish:
            yield stream_event({}, "stop")
        if done:
            yield b"data: [DONE]\n\n"

    return event_stream(events())


def event_stream(events: Iterable[bytes]) -> Writer:
    """A server-sent event stream of `events` as they are, ended by closing the connection."""

    def write(handler: BaseHTTPRequestHandler, request: dict) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        for event in events:
            handler.wfile.write(event)
            handler.wfile.flush()
        handler.close_connection = True

    return write


def stream_event(delta: dict, finish_reason: str | None) -> bytes:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
             "model": SERVED_MODEL,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}  # fmt: skip
    return f"data: {json.dumps(chunk)}\n\n".encode()


def reply_ignoring_the_token_limit(megabytes: float) -> Writer:
    """`megabytes` of answer, streamed piece by piece when asked to stream, else in one body."""
    piece = "and so on " * 10
    count = int(megabytes * 1_000_000 / len(piece))

    def write(handler: BaseHTTPRequestHandler, request: dict) -> None:
        if request.get("stream"):
            streamed_reply(piece for _ in range(count))(handler, request)
        else:
            raw_reply(completion(piece * count))(handler, request)

    return write
