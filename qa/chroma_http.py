"""A Chroma server over its HTTP API, without importing chromadb.

Importing chromadb costs a cold `qa ask` or a one-article `qa ingest` most of a second (it
builds every client, telemetry and embedding-function class it has), and its HTTP client
waits for a reply without any deadline. qa needs few of a server's calls: collections by name,
created and deleted, and their `get`, `query`, `count`, `upsert` and `delete`. This client
makes those calls itself, with the JSON Chroma's own client sends, each within a deadline and
a size cap. It and its handles answer like chromadb's client and `Collection` for the calls
qa makes, so the store's parts do not know which one they were given.
"""

import base64
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
# What chromadb's client sends for a new collection, so one made here is read by it alike.
DEFAULT_EMBEDDING_FUNCTION = {"name": "default", "type": "known", "config": {}}


class ChromaHttpError(Exception):
    """A Chroma server's error reply; `kind` is its error's name (NotFoundError, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if kind else message)
        self.kind = kind


class ChromaUnreachable(ChromaHttpError):
    """The connection to the server failed, was refused or was dropped."""


class ChromaTimeout(ChromaHttpError):
    """The server's reply did not end by its deadline."""


class ChromaServer:
    """The calls qa makes of a Chroma server, one at a time over one kept-alive connection.

    On the standard library's HTTP client: httpx's import and its TLS context alone cost a
    cold question 0.3 s, and qa needs neither pooling nor HTTP/2.
    """

    def __init__(self, host: str, port: int, https: bool, timeout: float) -> None:
        self.host, self.port, self.https = host, port, https
        self.timeout = timeout
        self.lock = threading.Lock()
        self.connection: http.client.HTTPConnection | None = None
        self._checks: dict[str, Any] | None = None

    def heartbeat(self) -> int:
        return int(self.request("GET", "/heartbeat")["nanosecond heartbeat"])

    def get_collection(self, name: str) -> "HttpCollection":
        """The collection called `name`; a ChromaHttpError of kind NotFoundError if none."""
        model = self.request("GET", f"{PLACE}/collections/{quote(name, safe='')}")
        return HttpCollection(self, model)

    def create_collection(
        self, name: str, metadata: dict[str, Any] | None = None, configuration: Any = None
    ) -> "HttpCollection":
        """A new collection; a ChromaHttpError if one of that name exists."""
        return self._created(name, metadata, configuration or {}, get_or_create=False)

    def get_or_create_collection(self, name: str) -> "HttpCollection":
        # chromadb's default embedding function asks for L2 distance when nothing else does.
        return self._created(name, None, {"hnsw": {"space": "l2"}}, get_or_create=True)

    def _created(
        self, name: str, metadata: Any, configuration: dict[str, Any], get_or_create: bool
    ) -> "HttpCollection":
        configuration = {"spann": None, "embedding_function": DEFAULT_EMBEDDING_FUNCTION,
                         **configuration}  # fmt: skip
        body = {"name": name, "metadata": metadata, "configuration": configuration,
                "schema": None, "get_or_create": get_or_create}  # fmt: skip
        return HttpCollection(self, self.request("POST", f"{PLACE}/collections", body))

    def delete_collection(self, name: str) -> None:
        self.request("DELETE", f"{PLACE}/collections/{quote(name, safe='')}")

    def get_max_batch_size(self) -> int:
        return int(self._pre_flight_checks().get("max_batch_size", -1))

    def takes_base64(self) -> bool:
        """Whether the server reads vectors sent as base64 (smaller, and made faster)."""
        return bool(self._pre_flight_checks().get("supports_base64_encoding", False))

    def _pre_flight_checks(self) -> dict[str, Any]:
        if self._checks is None:
            self._checks = self.request("GET", "/pre-flight-checks")
        return self._checks

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The server's JSON reply to one call, read whole by the deadline and under the cap."""
        content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY) if body else None
        with self.lock:
            # From the moment the call is sent: waiting for another thread's call is not it.
            deadline = time.monotonic() + self.timeout
            # A kept-alive connection the server has closed since fails before any reply:
            # that one call is sent again once, on a new connection. Every call qa makes can
            # be: reads, upserts and deletes by id come to the same, and a collection made
            # twice fails as one another writer made, which the store already allows for.
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
    """One collection's calls, answering as chromadb's `Collection` does."""

    def __init__(self, server: ChromaServer, model: dict[str, Any]) -> None:
        self.server = server
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
        found = self.server.request("POST", self.path + "/get", body)
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
        return self.server.request("POST", self.path + "/query", body)

    def count(self) -> int:
        return int(self.server.request("GET", self.path + "/count"))

    def upsert(
        self,
        *,
        ids: list[str],
        embeddings: Any,
        metadatas: list[dict] | None = None,
        documents: list[str] | None = None,
    ) -> None:
        vectors = np.asarray(embeddings, dtype="<f4")
        if self.server.takes_base64():
            sent: Any = [base64.b64encode(vector.tobytes()).decode("ascii") for vector in vectors]
        else:
            sent = vectors
        body = {"ids": ids, "embeddings": sent, "metadatas": metadatas, "documents": documents,
                "uris": None}  # fmt: skip
        self.server.request("POST", self.path + "/upsert", body)

    def delete(self, *, ids: list[str]) -> None:
        self.server.request("POST", self.path + "/delete", {"ids": ids})


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
