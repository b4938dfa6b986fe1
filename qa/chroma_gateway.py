"""The one way into Chroma: its client, embedded or on a server, and the one place where its
failures become qa's errors."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from qa.chroma_http import ChromaServer, ChromaTimeout, ChromaUnreachable, is_not_found
from qa.chroma_local import local_reader
from qa.errors import InputError, StoreError, StoreUnavailableError
from qa.masking import mask_secrets
from qa.store_files import DATABASE, damaged

# What SQLite and Chroma's vector index say when their files are damaged, and what to call it.
DAMAGE_MESSAGES = {
    "database disk image is malformed": "is malformed (SQLite cannot read its pages)",
    "file is not a database": "is not an SQLite database",
    "error getting embedding": "has a vector index that does not match its records",
    "error loading hnsw index": "has a vector index that cannot be loaded",
    "unpickling": "has a vector index whose id map cannot be read",
}
# Reads of many rows go in pages: a server never sends one huge reply, and Chroma fails a
# `get` that would return more rows than SQLite takes variables in one statement (32,766).
PAGE_SIZE = 5000
T = TypeVar("T")


class ChromaGateway:
    """A Chroma client, and `calls()`, which every call to Chroma runs inside.

    A server's client is qa's own (qa.chroma_http), for reads and writes. An embedded store's
    is chromadb's; its collections are looked up through `reader`: that client, or, for a
    store opened to ask, a reader of Chroma's core alone that spares the question importing
    chromadb (qa.chroma_local), and then chromadb's client is opened only if something writes
    after all.
    """

    def __init__(
        self,
        client: Any,
        location: str,
        path: Path | None = None,
        reader: Any = None,
        open_client: Callable[[], Any] | None = None,
        open_reader: Callable[[], Any] | None = None,
    ) -> None:
        self._client = client
        self._open_client = open_client
        self.reader = reader if reader is not None else client
        self._open_reader = open_reader
        # For messages: a server's URL never shows a password or token here.
        self.location = location
        # The embedded store's folder; None on a server.
        self.path = path
        self._max_batch: int | None = None

    @property
    def client(self) -> Any:
        """The client that writes: chromadb's for an embedded store, qa's for a server."""
        if self._client is None and self._open_client is not None:
            self._client = self._open_client()
        return self._client

    @property
    def reader_opened_at(self) -> int | None:
        """When the reader was opened (ms since the epoch) if it is a Chroma core of this
        process's own, which keeps each vector index as it first loaded it and so misses
        vectors others wrote since; None where every search sees the latest."""
        return getattr(self.reader, "opened_at", None) if self._open_reader else None

    def reopen_reader(self) -> None:
        """A new reader, which loads the vector indexes again when next searched."""
        if self._open_reader is not None:
            with self.calls():
                self.reader = self._open_reader()

    @contextmanager
    def calls(self) -> Iterator[None]:
        """Turn a failure of the Chroma calls inside into one clear error."""
        try:
            yield
        except StoreError:
            raise
        # Chroma's HTTP client raises a bare Exception for any server error it has no class
        # for, so no narrower type catches them all.
        except Exception as error:
            raise self._store_error(error) from error

    def collection(self, name: str) -> Any:
        """The collection called `name`, or None; never creates it."""
        with self.calls():
            try:
                return self.reader.get_collection(name)
            except Exception as error:
                if is_not_found(error):
                    return None
                raise

    def get_collection(self, name: str) -> Any:
        """The collection called `name`; a StoreError if there is none."""
        with self.calls():
            return self.reader.get_collection(name)

    def create_collection(self, name: str, metadata: dict[str, Any]) -> Any:
        """A new collection searched by cosine distance; fails if it exists."""
        with self.calls():
            return self.client.create_collection(
                name, metadata=metadata, configuration={"hnsw": {"space": "cosine"}}
            )

    def get_or_create_collection(self, name: str) -> Any:
        with self.calls():
            return self.client.get_or_create_collection(name)

    def delete_collection(self, name: str) -> None:
        with self.calls():
            self.client.delete_collection(name)

    def batches(self, rows: Sequence[T]) -> Iterator[Sequence[T]]:
        """`rows` in parts no larger than one Chroma call accepts."""
        if self._max_batch is None:
            with self.calls():
                self._max_batch = self.client.get_max_batch_size()
        yield from in_parts(rows, self._max_batch)

    def _store_error(self, error: Exception) -> StoreError:
        if _caused_by(error, ChromaTimeout):
            return StoreUnavailableError(
                f"The Chroma server at {self.location} did not answer in time.",
                "Check the server's load, or raise QA_CHROMA_TIMEOUT (seconds).",
            )
        if _caused_by(error, ChromaUnreachable):
            return StoreUnavailableError(
                f"Lost the connection to the Chroma server at {self.location}.",
                "Check that `chroma run` is still running.",
            )
        problem = damage_named_by(error)
        if problem and self.path is not None:
            return damaged(self.path, self.path / DATABASE, problem)
        return StoreError(f"Chroma failed: {error}")


def embedded_gateway(path: Path, reading: bool = False) -> ChromaGateway:
    """A gateway to the embedded store at `path`. `reading`: collections are read through
    Chroma's core alone (qa.chroma_local) where it fits, and chromadb is imported only if
    something writes."""

    def open_reader() -> Any:
        return opened(path, lambda: local_reader(path))

    reader = open_reader() if reading else None
    if reader is None:
        return ChromaGateway(persistent_client(path), str(path), path)
    return ChromaGateway(
        None,
        str(path),
        path,
        reader=reader,
        open_client=lambda: persistent_client(path),
        open_reader=open_reader,
    )


def opened(path: Path, open_store: Callable[[], T]) -> T:
    """`open_store()`, its failure one clear error: the store's damage when Chroma names it."""
    try:
        return open_store()
    except StoreError:
        raise
    except Exception as error:
        problem = damage_named_by(error)
        if problem:
            raise damaged(path, path / DATABASE, problem) from error
        raise StoreError(f"Cannot open the store at {path}: {error}", "Check QA_HOME.") from error


def persistent_client(path: Path) -> Any:
    def client() -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )

    return opened(path, client)


def server_gateway(url: str, timeout: float) -> ChromaGateway:
    """A gateway to the Chroma server at `url`, every call within `timeout` seconds, which
    fails at once, naming the URL, when the server cannot be reached."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        raise InputError(
            f"Invalid Chroma URL {mask_secrets(url)!r}.", "Example: http://127.0.0.1:8000"
        )
    ssl = parsed.scheme == "https"
    server = ChromaServer(parsed.hostname, parsed.port or (443 if ssl else 8000), ssl, timeout)
    location = mask_secrets(url)
    try:
        server.heartbeat()
    except Exception as error:
        raise unreachable(location) from error
    return ChromaGateway(server, location)


def unreachable(location: str) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"Cannot reach the Chroma server at {location}.",
        "Start it with `chroma run --path DIR --port PORT`, or unset QA_CHROMA_URL "
        "to use the embedded store.",
    )


def in_pages(get: Callable[..., dict[str, Any]], **query: Any) -> Iterator[dict[str, Any]]:
    """The rows `get(**query)` finds, PAGE_SIZE at a time (by `limit` and `offset`)."""
    offset = 0
    while True:
        page = get(**query, limit=PAGE_SIZE, offset=offset)
        yield page
        if len(page["ids"]) < PAGE_SIZE:
            return
        offset += PAGE_SIZE


def in_parts(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive parts of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def damage_named_by(error: BaseException) -> str | None:
    """What a failure from Chroma says about its files, when it says they are damaged."""
    text = " ".join(str(part) for part in (error, error.__cause__, error.__context__) if part)
    lowered = text.lower()
    for phrase, problem in DAMAGE_MESSAGES.items():
        if phrase in lowered:
            return problem
    return None


def _caused_by(error: Exception, kind: type[Exception]) -> bool:
    """Whether `error`, or the error it began from, is a `kind`."""
    return any(isinstance(cause, kind) for cause in (error, error.__cause__, error.__context__))
