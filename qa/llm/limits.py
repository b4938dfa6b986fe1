"""Bounds on a model server's reply: a deadline for the whole of it, and a size cap.

An SDK's timeout bounds each read, so a server that sends a byte now and then, or one that
ignores the token limit and streams on, could keep qa waiting for ever. Here the reply is
read in a worker thread and the caller waits on it only until the deadline.
"""

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator


class ReplyFault(Exception):
    """A reply qa stopped reading, or cannot use; qa.llm.errors puts it into words."""


class ReplyTimeout(ReplyFault):
    """The whole reply did not arrive within `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete reply within {seconds:g}s")
        self.seconds = seconds


class ReplyTooLarge(ReplyFault):
    """The reply grew past `max_kb` KB, far beyond any answer qa asks for."""

    def __init__(self, max_kb: float) -> None:
        super().__init__(f"reply longer than {max_kb:g} KB")
        self.max_kb = max_kb


class NotAChatCompletion(ReplyFault):
    """A successful reply whose body is not a chat completion; `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplyCutShort(ReplyFault):
    """A streamed reply that ended without saying it was finished."""


def within_limits(
    pieces: Callable[[], Iterable[str]], seconds: float, max_kb: float
) -> Iterator[str]:
    """The pieces of `pieces()`, read in a worker thread; `ReplyTimeout` if they have not all
    come within `seconds`, `ReplyTooLarge` once they pass `max_kb` KB of UTF-8."""
    deadline = time.monotonic() + seconds
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()
    # The worker sees the caller's context variables (LangChain keeps its callbacks there).
    read = contextvars.copy_context().run
    worker = threading.Thread(target=read, args=(_read, pieces, max_kb, handoff, stop), daemon=True)
    worker.start()
    try:
        while True:
            try:
                kind, value = handoff.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ReplyTimeout(seconds) from None
            if kind == "piece":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        # A worker still blocked in a read is left to its per-read timeout; it is a daemon.
        stop.set()


def _read(
    pieces: Callable[[], Iterable[str]],
    max_kb: float,
    handoff: queue.SimpleQueue,
    stop: threading.Event,
) -> None:
    iterator = None
    size = 0
    try:
        iterator = iter(pieces())
        for piece in iterator:
            size += len(piece.encode("utf-8"))
            if size > max_kb * 1024:
                raise ReplyTooLarge(max_kb)
            handoff.put(("piece", piece))
            if stop.is_set():
                break
        handoff.put(("end", None))
    except BaseException as error:
        # Every failure is the caller's to see, in the caller's thread.
        handoff.put(("error", error))
    finally:
        # Closing the generator here, in its own thread, releases the server's connection.
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
