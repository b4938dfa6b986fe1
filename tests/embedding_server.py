"""A loopback OpenAI-compatible embeddings server, for the tests and bench/.

`POST /v1/embeddings` answers with the bundled model's own vectors, computed by qa's ONNX
embedder, or at once from vectors computed ahead (`vectors`), optionally after a fixed delay
per request that stands in for a remote GPU. It counts requests, texts per request and the
most requests in flight at once; `GET /stats` reports them, for a server in another process.
With `hold_until` N, requests wait until N are in flight together (then no more waiting), so
a client's concurrency shows in `max_in_flight` whatever the machine's speed.
`faults` are answered first, one a request: an HTTP status (its error quotes the caller's key,
as some servers do), "garbage" (a body that is not JSON), "one-short" (a vector missing) or
"shuffled" (the vectors listed in reverse order, each with its right index).
"""

import json
import multiprocessing
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path

from tests.servers import serve_http

MODEL = "all-MiniLM-L6-v2"
HOLD_SECONDS = 30
Fault = int | str


@dataclass
class EmbeddingServer:
    """What the server answers with, and what it has seen."""

    vectors: Mapping[str, Sequence[float]] | None = None
    delay: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    model_cache: Path | None = None
    hold_until: int = 0
    url: str = ""
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.gate = threading.Event()
        # A reply from vectors computed ahead is pieced together from their JSON, written once.
        self.encoded = {text: json.dumps(list(map(float, vector))) for text, vector in
                        (self.vectors or {}).items()}  # fmt: skip

    def stats(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "max_in_flight": self.max_in_flight,
                    "batch_sizes": list(self.batch_sizes)}  # fmt: skip

    def answer(self, request: bytes, key: str) -> tuple[int, bytes]:
        """The status and body for one request, after the delay."""
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.keys.append(key)
            fault = self.faults.pop(0) if self.faults else None
            if self.in_flight >= self.hold_until:
                self.gate.set()
        try:
            # A client that never sends that many at once is let through in the end.
            self.gate.wait(HOLD_SECONDS)
            time.sleep(self.delay)
            texts = json.loads(request)["input"]
            texts = [texts] if isinstance(texts, str) else texts
            with self.lock:
                self.batch_sizes.append(len(texts))
            if isinstance(fault, int):
                return fault, error_body(f"HTTP {fault} for the request made with key {key}")
            if fault == "garbage":
                return 200, b"<html><body>Service temporarily unavailable</body></html>"
            return 200, self.embeddings(texts, fault)
        finally:
            with self.lock:
                self.in_flight -= 1

    def embeddings(self, texts: list[str], fault: Fault | None) -> bytes:
        vectors = self.encoded_vectors(texts)
        items = [(index, vector) for index, vector in enumerate(vectors)]
        if fault == "one-short":
            items = items[:-1]
        elif fault == "shuffled":
            items.reverse()
        data = ",".join(
            f'{{"object":"embedding","index":{index},"embedding":{vector}}}'
            for index, vector in items
        )
        usage = '{"prompt_tokens":0,"total_tokens":0}'
        reply = f'{{"object":"list","data":[{data}],"model":"{MODEL}","usage":{usage}}}'
        return reply.encode()

    def encoded_vectors(self, texts: list[str]) -> list[str]:
        if self.vectors is not None:
            return [self.encoded[text] for text in texts]
        from qa.onnx_embedder import OnnxEmbedder
        from qa.settings import get_settings

        embedder = OnnxEmbedder(MODEL, self.model_cache or get_settings().model_cache_dir)
        return [json.dumps(vector) for vector in embedder.embed_documents(texts)]


@contextmanager
def serve_embeddings(server: EmbeddingServer) -> Iterator[EmbeddingServer]:
    """`server` on a free loopback port in this process; its `url` is the /v1 base URL."""

    class Handler(EmbeddingsHandler):
        state = server

    with serve_http(Handler) as base:
        server.url = f"{base}/v1"
        yield server


class EmbeddingsHandler(BaseHTTPRequestHandler):
    # Connections kept open, as a real server's are: the client reuses them.
    protocol_version = "HTTP/1.1"
    state: EmbeddingServer

    def do_POST(self) -> None:
        request = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.rstrip("/") != "/v1/embeddings":
            self.send(404, error_body(f"no route {self.path}"))
            return
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            status, body = self.state.answer(request, key)
        except (KeyError, ValueError, TypeError) as error:
            status, body = 400, error_body(f"cannot embed that: {error!r}")
        self.send(status, body)

    def do_GET(self) -> None:
        self.send(200, json.dumps(self.state.stats()).encode())

    def send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        # A retry may follow at once: the tests wait for nothing.
        self.send_header("retry-after-ms", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def error_body(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "error", "code": None}}).encode()


@dataclass
class ChildServer:
    """A server run by `serve_in_child`: its /v1 base URL and what it has seen so far."""

    url: str

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/stats", timeout=10) as reply:
            return json.loads(reply.read())


@contextmanager
def serve_in_child(vectors: Mapping[str, Sequence[float]], delay: float) -> Iterator[ChildServer]:
    """A server answering from `vectors` in a process of its own, so its work is not counted
    as the caller's."""
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="qa-embedding-server-") as folder:
        path = Path(folder) / "vectors.json"
        path.write_text(json.dumps({text: list(vector) for text, vector in vectors.items()}))
        process = context.Process(target=run_child, args=(path, delay, sending), daemon=True)
        process.start()
        # Only the child holds the sending end now: if it dies, the wait below ends.
        sending.close()
        try:
            if not receiving.poll(120):
                raise RuntimeError("the embeddings server did not start within 120 s")
            yield ChildServer(receiving.recv())
        except EOFError:
            raise RuntimeError("the embeddings server stopped before it started") from None
        finally:
            process.terminate()
            process.join(timeout=30)


def run_child(path: Path, delay: float, sending: Connection) -> None:
    server = EmbeddingServer(vectors=json.loads(path.read_text()), delay=delay)

    class Handler(EmbeddingsHandler):
        state = server

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    sending.send(f"http://127.0.0.1:{http.server_address[1]}/v1")
    http.serve_forever()
