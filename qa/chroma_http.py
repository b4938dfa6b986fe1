"""Reading a Chroma server over its HTTP API, without importing chromadb.

Importing chromadb costs a cold `qa ask` most of a second (it builds every client, telemetry
and embedding-function class it has), and asking through a server needs four of its calls:
a collection by name, `get`, `query` and `count`. This client makes those calls itself, with
the same JSON Chroma's own client sends, each within a deadline and a size cap; writes still
go through chromadb's client. Its handles answer like chromadb's `Collection` for the calls
qa reads with, so the store's parts do not know which one they were given.
"""

import http.client
import threading
import time
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

API = "/api/v2"
PLACE = "/tenants/default_tenant/databases/default_database"
# A reply past this is not one qa asked for (the largest is a page of chunks with texts).
MAX_REPLY_BYTES = 256 * 1024 * 1024
READ_BYTES = 1 << 16


class ChromaHttpError(Exception):
    """A Chroma server's error reply; `kind` is its error's name (NotFoundError, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if kind else message)
        self.kind = kind


class ChromaUnreachable(ChromaHttpError):
    """The connection to the server failed, was refused or was dropped."""


class ChromaTimeout(ChromaHttpError):
    """The server's reply did not end by its deadline."""


class ChromaReader:
    """The read calls of a Chroma server, one at a time over one kept-alive connection.

    On the standard library's HTTP client: httpx's import and its TLS context alone cost a
    cold question 0.3 s, and a reader needs neither pooling nor HTTP/2.
    """

    def __init__(self, host: str, port: int, https: bool, timeout: float) -> None:
        self.host, self.port, self.https = host, port, https
        self.timeout = timeout
        self.lock = threading.Lock()
        self.connection: http.client.HTTPConnection | None = None

    def heartbeat(self) -> int:
        return int(self.request("GET", "/heartbeat")["nanosecond heartbeat"])

    def get_collection(self, name: str) -> "HttpCollection":
        """The collection called `name`; a ChromaHttpError of kind NotFoundError if none."""
        model = self.request("GET", f"{PLACE}/collections/{quote(name, safe='')}")
        return HttpCollection(self, model)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The server's JSON reply to one call, read whole by the deadline and under the cap."""
        deadline = time.monotonic() + self.timeout
        content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY) if body else None
        with self.lock:
            # A kept-alive connection the server has closed since fails before any reply:
            # that one call is sent again once, on a new connection (every call here reads).
            for retry in (self.connection is not None, False):
                try:
                    status, data = self._exchange(method, API + path, content, deadline)
                    break
                except (ConnectionError, http.client.BadStatusLine) as error:
                    self.close()
                    if not retry:
                        raise ChromaUnreachable("", f"connection failed: {error}") from error
                except TimeoutError as error:
                    self.close()
                    raise ChromaTimeout("", "the reply did not end in time") from error
                except (OSError, http.client.HTTPException) as error:
                    self.close()
                    raise ChromaUnreachable("", f"connection failed: {error}") from error
        if 200 <= status < 300:
            return orjson.loads(data)
        raise error_of(status, data)

    def _exchange(
        self, method: str, path: str, content: bytes | None, deadline: float
    ) -> tuple[int, bytes]:
        connection = self._connected(deadline)
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        connection.request(method, path, body=content, headers=headers)
        response = connection.getresponse()
        data = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            part = response.read(READ_BYTES)
            if not part:
                break
            data += part
            if len(data) > MAX_REPLY_BYTES:
                self.close()
                raise ChromaHttpError("", f"the server's reply passed {MAX_REPLY_BYTES} bytes")
        if response.will_close:
            self.close()
        return response.status, bytes(data)

    def _connected(self, deadline: float) -> http.client.HTTPConnection:
        if self.connection is None:
            seconds = max(deadline - time.monotonic(), 0.001)
            if self.https:
                import ssl

                self.connection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=seconds, context=ssl.create_default_context()
                )
            else:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=seconds)
        elif self.connection.sock is not None:
            self.connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class HttpCollection:
    """One collection's read calls, answering as chromadb's `Collection` does."""

    def __init__(self, reader: ChromaReader, model: dict[str, Any]) -> None:
        self.reader = reader
        self.id = model["id"]
        self.name = model["name"]
        self.metadata = model.get("metadata")
        self.path = f"{PLACE}/collections/{self.id}"

    def get(
        self,
        *,
        include: list[str],
        ids: list[str] | None = None,
        where: dict[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        body = {"ids": ids, "where": where, "limit": limit, "offset": offset, "include": include}
        found = self.reader.request("POST", self.path + "/get", body)
        if found.get("embeddings") is not None:
            # As chromadb's client gives them: the reply's numbers in one array.
            found["embeddings"] = np.array(found["embeddings"])
        return found

    def query(
        self,
        *,
        query_embeddings: list[list[float]],
        n_results: int,
        where: dict[str, Any] | None,
        include: list[str],
    ) -> dict[str, Any]:
        body = {"query_embeddings": query_embeddings, "n_results": n_results, "where": where,
                "include": include}  # fmt: skip
        return self.reader.request("POST", self.path + "/query", body)

    def count(self) -> int:
        return int(self.reader.request("GET", self.path + "/count"))


def error_of(status: int, body: bytes) -> ChromaHttpError:
    """The error a server's reply names, or its status when it names none."""
    # On one line: an error is one line, whatever the server put in its reply.
    try:
        reply = orjson.loads(body)
        return ChromaHttpError(str(reply["error"]), one_line(str(reply.get("message", ""))))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = one_line(body[:200].decode("utf-8", "replace"))
        return ChromaHttpError("", f"HTTP {status}" + (f": {text}" if text else ""))


def one_line(text: str) -> str:
    return " ".join(text.split())


def is_not_found(error: BaseException) -> bool:
    """Whether a failure from either client says the collection does not exist."""
    if isinstance(error, ChromaHttpError):
        return error.kind == "NotFoundError"
    return type(error).__name__ == "NotFoundError"
