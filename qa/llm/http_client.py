"""The HTTP client qa gives the openai SDK: each attempt at a reply ends by its deadline and
its size cap, and a successful chat completion is checked before the SDK reads it.

The SDK's timeout bounds each read, not the whole reply; a timed-out attempt is retried by
the SDK like any other timeout. Only the openai SDK imports this module, so it may import
the SDK at the top.
"""

import importlib
import time
from collections.abc import Iterator
from typing import Any

import openai

from qa.llm.completions import StreamCheck, check_chat_completion
from qa.llm.limits import ReplyTooLarge

# The SDK is built on httpx2 from openai 3 on, on httpx before; what it is given must match.
httpx = importlib.import_module("httpx2" if int(openai.__version__.split(".")[0]) >= 3 else "httpx")
CHAT_COMPLETIONS = "/chat/completions"


class BoundedClient(openai.DefaultHttpxClient):
    """The SDK's own client, whose every request ends within `seconds` and `max_kb` KB."""

    def __init__(self, seconds: float, max_kb: float, **options: Any) -> None:
        # The cap counts bytes as they arrive; uncompressed, those are the reply's own bytes.
        super().__init__(headers={"Accept-Encoding": "identity"}, **options)
        self.seconds = seconds
        self.max_kb = max_kb

    def send(self, request: Any, *, stream: bool = False, **options: Any) -> Any:
        deadline = time.monotonic() + self.seconds
        response = super().send(request, stream=True, **options)
        completion = response.is_success and request.url.path.endswith(CHAT_COMPLETIONS)
        streamed = "text/event-stream" in response.headers.get("content-type", "")
        check = StreamCheck() if completion and streamed else None
        response.stream = BoundedBody(response.stream, request, deadline, self.max_kb, check)
        if stream:
            return response
        try:
            response.read()
            if completion and not streamed:
                check_chat_completion(response.content)
        except BaseException:
            response.close()
            raise
        return response


class BoundedBody(httpx.SyncByteStream):
    """A response body that stops at its deadline or past `max_kb` KB, whichever comes first;
    a chat completion's stream is checked by `check` on the way."""

    def __init__(
        self, stream: Any, request: Any, deadline: float, max_kb: float, check: StreamCheck | None
    ) -> None:
        self.stream = stream
        self.request = request
        self.deadline = deadline
        self.max_kb = max_kb
        self.check = check

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self.stream:
            size += len(chunk)
            if size > self.max_kb * 1024:
                raise ReplyTooLarge(self.max_kb)
            if time.monotonic() > self.deadline:
                raise httpx.ReadTimeout("the reply did not end in time", request=self.request)
            if self.check:
                self.check.feed(chunk)
            yield chunk
        if self.check:
            self.check.end()

    def close(self) -> None:
        self.stream.close()
