"""What a chat completion from an OpenAI-compatible server must look like, checked on the wire
before the SDK reads it: one JSON body with a first choice's message content, or a stream of
chunks, each a JSON object whose choices carry deltas, that ends with a finish_reason or
`data: [DONE]`. A stream that just stops was cut off, however cleanly its connection closed.
"""

import json

from qa.llm.limits import NotAChatCompletion, ReplyCutShort

DONE = b"[DONE]"


def check_chat_completion(body: bytes) -> None:
    """Raise `NotAChatCompletion` unless `body` holds a first choice with message content."""
    try:
        completion = json.loads(body)
    except ValueError:
        raise NotAChatCompletion("its body is not JSON") from None
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices:
        raise NotAChatCompletion("it has no choices")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    # Content is a string, or a list of parts from some servers; qa asks for nothing else.
    if not isinstance(content, str | list):
        raise NotAChatCompletion("its first choice has no message content")


class StreamCheck:
    """Reads a chat completion's server-sent events as their bytes arrive (`feed`), and says
    at the end of the body (`end`) whether the stream was complete."""

    def __init__(self) -> None:
        self.unread = b""
        self.data: list[bytes] = []
        self.complete = False

    def feed(self, chunk: bytes) -> None:
        """Check every event `chunk` completes; raises before the SDK could read a bad one."""
        *lines, self.unread = (self.unread + chunk).split(b"\n")
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def end(self) -> None:
        self._line(self.unread.rstrip(b"\r"))
        self._line(b"")
        if not self.complete:
            raise ReplyCutShort("the stream ended without a finish_reason or [DONE]")

    def _line(self, line: bytes) -> None:
        # An event is its `data:` lines up to a blank line; comments and other fields pass.
        if line.startswith(b"data:"):
            value = line.removeprefix(b"data:")
            self.data.append(value.removeprefix(b" "))
        elif not line and self.data:
            event, self.data = b"\n".join(self.data), []
            self._event(event)

    def _event(self, data: bytes) -> None:
        if data.strip() == DONE:
            self.complete = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise NotAChatCompletion("a streamed chunk is not JSON") from None
        if isinstance(chunk, dict) and "error" in chunk:
            return  # A server's own error, which the SDK reports.
        choices = chunk.get("choices", []) if isinstance(chunk, dict) else None
        if not isinstance(choices, list) or not all(map(is_streamed_choice, choices)):
            raise NotAChatCompletion("a streamed chunk is malformed")
        if any(choice.get("finish_reason") for choice in choices):
            self.complete = True


def is_streamed_choice(choice: object) -> bool:
    """A streamed choice: an object whose delta, if any, is an object with text content."""
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    if delta is None:
        return True
    return isinstance(delta, dict) and isinstance(delta.get("content"), str | list | None)
