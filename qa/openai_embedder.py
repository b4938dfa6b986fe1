"""Embeddings from OpenAI or any OpenAI-compatible server (Text Embeddings Inference, Infinity,
vLLM, Ollama), with several requests in flight.

Each request has the chat client's bounds: the SDK retries what a retry can help, every attempt
ends by QA_TIMEOUT and a size cap, and the request with its retries by QA_TIMEOUT times
(QA_MAX_RETRIES + 1). Failures are one line, with every secret masked.
"""

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from qa.errors import EmbeddingError
from qa.llm.limits import ReplyFault, ReplyTimeout, ReplyTooLarge, within_limits
from qa.masking import mask_secrets
from qa.settings import Settings

# Room in a reply for one text's vector: 3,072 dimensions (the largest OpenAI model's) written
# as JSON numbers of up to 25 characters. The chat cap (QA_MAX_REPLY_KB) counts if larger.
KB_PER_TEXT = 80
OPENAI_API_HOST = "api.openai.com"
# Questions whose vectors are kept: retrieval and the extractive answerer both embed one.
RECENT_QUERIES = 32
PROVIDER = "Embeddings"


class NotEmbeddings(ReplyFault):
    """A successful reply that does not hold one vector per text sent; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OpenAIEmbedder:
    """Texts in batches of QA_EMBEDDING_BATCH_SIZE, QA_EMBEDDING_CONCURRENCY requests at once;
    vectors come back in the order of the texts."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.embeddings.model_name
        self.settings = settings
        self.server = embedding_server(settings)
        self.batch_size = settings.embeddings.batch_size
        self.concurrency = settings.embeddings.concurrency
        # What the ingest pipeline should hand over at once for every request to be busy.
        self.texts_in_flight = self.batch_size * self.concurrency
        self.seconds = settings.llm.timeout * (settings.llm.max_retries + 1)
        self.max_kb = max(settings.llm.max_reply_kb, KB_PER_TEXT * self.batch_size)
        self._client: Any = None
        self._lock = threading.Lock()
        self._recent_queries: dict[str, list[float]] = {}

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        batches = [
            list(texts[start : start + self.batch_size])
            for start in range(0, len(texts), self.batch_size)
        ]
        if not batches:
            return []
        vectors: list[list[float]] = []
        with self._errors_in_one_line():
            client = self.openai_client()
            for batch, reply in zip(batches, self._in_flight(client, batches), strict=True):
                vectors.extend(reply)
                if progress:
                    progress(len(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        if text not in self._recent_queries:
            if len(self._recent_queries) >= RECENT_QUERIES:
                self._recent_queries.pop(next(iter(self._recent_queries)))
            self._recent_queries[text] = self.embed_documents([text])[0]
        return self._recent_queries[text]

    def warm_up(self) -> None:
        # A remote model: nothing to load here.
        return None

    def _in_flight(self, client: Any, batches: list[list[str]]) -> Iterator[list[list[float]]]:
        """The vectors of each batch in turn, with up to `concurrency` requests out at once;
        after a failure no more are sent."""
        window: deque[Future] = deque()
        for batch in batches:
            if len(window) == self.concurrency:
                yield window.popleft().result()
            window.append(self._sent(client, batch))
        while window:
            yield window.popleft().result()

    def _sent(self, client: Any, batch: list[str]) -> Future:
        """The request for `batch`, under way in a thread of its own: a daemon, so that a
        Ctrl-C never waits for a server."""
        future: Future = Future()

        def request() -> None:
            try:
                future.set_result(self._embed_batch(client, batch))
            except BaseException as error:
                future.set_exception(error)

        threading.Thread(target=request, name="qa-embed", daemon=True).start()
        return future

    def _embed_batch(self, client: Any, batch: list[str]) -> list[list[float]]:
        reply = "".join(
            within_limits(lambda: [self._post(client, batch)], self.seconds, self.max_kb)
        )
        return vectors_of(reply, len(batch))

    def _post(self, client: Any, batch: list[str]) -> str:
        # Floats, not the SDK's default base64, which some compatible servers do not speak.
        raw = client.embeddings.with_raw_response.create(
            model=self.name, input=batch, encoding_format="float"
        )
        return raw.text

    def openai_client(self) -> Any:
        """The SDK's client for the embeddings server, made on first use."""
        with self._lock:
            if self._client is None:
                import openai

                from qa.llm.http_client import BoundedClient

                self._client = openai.OpenAI(
                    api_key=embedding_api_key(self.settings),
                    base_url=self.server,
                    timeout=self.settings.llm.timeout,
                    # The SDK retries 429, 5xx, timeouts and dropped connections, after
                    # Retry-After.
                    max_retries=self.settings.llm.max_retries,
                    http_client=BoundedClient(self.settings.llm.timeout, self.max_kb),
                )
            return self._client

    @contextmanager
    def _errors_in_one_line(self) -> Iterator[None]:
        from qa.llm.errors import provider_failures

        try:
            yield
        except provider_failures() as error:
            raise masked(embedding_error(error, self), self.settings) from error


def embedding_server(settings: Settings) -> str | None:
    """The embeddings server's base URL: QA_EMBEDDING_BASE_URL, else the chat model's server;
    None is the OpenAI API."""
    return blank_is_unset(settings.embeddings.base_url) or blank_is_unset(settings.llm.base_url)


def embedding_api_key(settings: Settings) -> str:
    """QA_EMBEDDING_API_KEY, else OPENAI_API_KEY where that key is meant to go: the chat
    model's server or the OpenAI API, never another embeddings server."""
    own = secret_of(settings.embeddings.api_key)
    if own:
        return own
    server = embedding_server(settings)
    openai_key = secret_of(settings.llm.api_key)
    chat_server = blank_is_unset(settings.llm.base_url)
    if openai_key and (
        server in (None, chat_server) or urlsplit(server).hostname == OPENAI_API_HOST
    ):
        return openai_key
    if server:
        # Self-hosted servers mostly want no key; the SDK insists on one.
        return "not-needed"
    raise EmbeddingError(
        "No API key for OpenAI embeddings is set.",
        "Set OPENAI_API_KEY (or QA_EMBEDDING_API_KEY), or QA_EMBEDDING_BASE_URL for another "
        "embeddings server, or use QA_EMBEDDINGS=local.",
    )


def vectors_of(reply: str, count: int) -> list[list[float]]:
    """The vectors of an embeddings reply, in the order of the texts sent; `NotEmbeddings`
    unless it holds `count` vectors of numbers, all of one length."""
    try:
        body = parsed_json(reply)
    except ValueError:
        raise NotEmbeddings("its body is not JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise NotEmbeddings("it has no list of embeddings")
    if len(data) != count:
        raise NotEmbeddings(f"{len(data)} vectors for {count} texts")
    if not all(isinstance(item, dict) and isinstance(item.get("embedding"), list) for item in data):
        raise NotEmbeddings("an item has no embedding")
    # Servers may list the vectors in any order; `index` says which text each one is for.
    indexes = [item.get("index", position) for position, item in enumerate(data)]
    if set(indexes) != set(range(count)):
        raise NotEmbeddings("its indexes do not match the texts sent")
    vectors: list = [None] * count
    for index, item in zip(indexes, data, strict=True):
        vectors[index] = item["embedding"]
    try:
        matrix = np.array(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise NotEmbeddings("its vectors are not numbers of one length") from None
    if matrix.ndim != 2 or not matrix.shape[1] or not np.isfinite(matrix).all():
        raise NotEmbeddings("its vectors are not finite numbers of one length")
    return matrix.tolist()


def parsed_json(reply: str) -> Any:
    """The reply's JSON. orjson reads a reply of float vectors five times as fast as `json`,
    which holds the interpreter lock all the while; what orjson refuses (NaN, huge integers)
    `json` reads as before."""
    import orjson

    try:
        return orjson.loads(reply)
    except orjson.JSONDecodeError:
        return json.loads(reply)


def embedding_error(error: Exception, embedder: OpenAIEmbedder) -> EmbeddingError:
    """What a failed embeddings request means, in one line that says what to do."""
    import openai

    from qa.llm.errors import attempts_note, broke_off, found_in, short, unexpected_error

    where = mask_secrets(embedder.server) if embedder.server else "the OpenAI API"
    settings = embedder.settings
    fault = found_in(error, ReplyFault)
    if isinstance(fault, NotEmbeddings):
        return EmbeddingError(
            f"{PROVIDER}: the reply from {where} was not a valid embeddings reply "
            f"({fault.reason}).",
            "Check that QA_EMBEDDING_BASE_URL is an OpenAI-compatible server's (it usually "
            "ends in /v1).",
        )
    if isinstance(fault, ReplyTooLarge):
        return EmbeddingError(
            f"{PROVIDER}: a reply from {where} grew past {fault.max_kb:g} KB.",
            "Lower QA_EMBEDDING_BATCH_SIZE, or raise QA_MAX_REPLY_KB.",
        )
    if isinstance(fault, ReplyTimeout):
        return EmbeddingError(
            f"{PROVIDER}: no complete reply from {where} within {fault.seconds:g}s"
            f"{attempts_note('openai', settings)}.",
            "Raise QA_TIMEOUT, lower QA_EMBEDDING_BATCH_SIZE, or check the server.",
        )
    if isinstance(error, openai.APITimeoutError):
        return EmbeddingError(
            f"{PROVIDER}: no complete reply from {where} within {settings.llm.timeout:g}s.",
            "Raise QA_TIMEOUT, lower QA_EMBEDDING_BATCH_SIZE, or check the server.",
        )
    if isinstance(error, openai.AuthenticationError):
        return EmbeddingError(
            f"{PROVIDER}: the API key was rejected by {where}.",
            "Check QA_EMBEDDING_API_KEY (or OPENAI_API_KEY).",
        )
    if isinstance(error, openai.PermissionDeniedError):
        return EmbeddingError(
            f"{PROVIDER}: the API key may not use model {embedder.name!r} at {where}.",
            "Check the key's permissions or QA_EMBEDDING_MODEL.",
        )
    if isinstance(error, openai.NotFoundError):
        return EmbeddingError(
            f"{PROVIDER}: model {embedder.name!r} or the embeddings endpoint was not found "
            f"at {where}.",
            "Check QA_EMBEDDING_MODEL and QA_EMBEDDING_BASE_URL (it usually ends in /v1).",
        )
    if isinstance(error, openai.RateLimitError):
        return EmbeddingError(
            f"{PROVIDER}: rate limited by {where}.",
            "Lower QA_EMBEDDING_CONCURRENCY, or wait and try again.",
        )
    if isinstance(error, openai.APIConnectionError):
        if broke_off(error):
            return EmbeddingError(
                f"{PROVIDER}: the connection to {where} broke off during a reply.",
                "Try again, or check the server's log.",
            )
        return EmbeddingError(
            f"{PROVIDER}: cannot reach {where}.",
            "Check that the server is running and that QA_EMBEDDING_BASE_URL is its URL.",
        )
    if isinstance(error, openai.APIStatusError):
        said = f": {short(server_message(error)).rstrip('.')}" if error.status_code < 500 else ""
        return EmbeddingError(
            f"{PROVIDER}: {where} answered HTTP {error.status_code}{said}.",
            "A smaller QA_EMBEDDING_BATCH_SIZE may fit the server's limits."
            if error.status_code in (400, 413, 422)
            else "Try again later, or check the server's log.",
        )
    return EmbeddingError(unexpected_error(error, PROVIDER).message)


def server_message(error: Any) -> str:
    """What the server said in its error reply, without the SDK's "Error code: N - "."""
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) and message.strip() else error.message


def masked(error: EmbeddingError, settings: Settings) -> EmbeddingError:
    """`error` with the configured keys masked as well, wherever they were set."""
    keys = (secret_of(settings.embeddings.api_key), secret_of(settings.llm.api_key))
    secrets = tuple(key for key in keys if key)
    return EmbeddingError(mask_secrets(error.message, secrets), mask_secrets(error.hint, secrets))


def secret_of(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def blank_is_unset(value: str | None) -> str | None:
    # `QA_EMBEDDING_BASE_URL=` in a shell means "not set".
    return value.strip() if value and value.strip() else None
