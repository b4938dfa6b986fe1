"""A GGUF model run by llama-cpp-python in a child process, so a native crash is an error.

llama.cpp built for another CPU dies with SIGSEGV inside its first decode; in-process that
kills qa with a bare exit 139. Here the parent sees the child's death and says what to do.
The child speaks JSON lines: one request on stdin, `piece` lines, then `done` or `error`.
"""

import json
import os
import signal
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from qa.errors import LLMError
from qa.types import Messages

# Room for k=5 passages of 800 characters, the instructions and the answer.
CONTEXT_TOKENS = 4096
PORTABLE_BUILD_HINT = (
    "llama-cpp-python was probably built for another CPU; rebuild it portably: "
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir --no-deps '
    "llama-cpp-python"
)


class LocalModel:
    """The model at `path`, loaded once in a child process that is restarted if it stops."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen | None = None

    def complete(self, messages: Messages, **options: Any) -> Iterator[str]:
        """The reply to `messages`, piece by piece, from the child."""
        process = self._started()
        finished = False
        try:
            self._send(process, {"messages": messages, **options})
            while True:
                message = self._receive(process, "answering")
                if "piece" in message:
                    yield message["piece"]
                elif "error" in message:
                    finished = True
                    raise LLMError(f"local: {message['error']}", message.get("hint", ""))
                else:
                    finished = True
                    return
        finally:
            if not finished:
                # A reply cut short (Ctrl-C, a consumer that stopped) leaves pieces in the
                # pipe that the next request would read; a fresh child is cheaper than a resync.
                self.stop()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def _started(self) -> subprocess.Popen:
        if self.process is not None and self.process.poll() is None:
            return self.process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qa.llm.local_model", str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        weakref.finalize(self, stop_process, self.process)
        loaded = self._receive(self.process, "loading the model")
        if "error" in loaded:
            self.stop()
            raise LLMError(f"local: {loaded['error']}", loaded.get("hint", ""))
        return self.process

    def _send(self, process: subprocess.Popen, request: dict[str, Any]) -> None:
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except BrokenPipeError:
            raise self._death(process, "answering") from None

    def _receive(self, process: subprocess.Popen, doing: str) -> dict[str, Any]:
        line = process.stdout.readline()
        if not line:
            raise self._death(process, doing)
        return json.loads(line)

    def _death(self, process: subprocess.Popen, doing: str) -> LLMError:
        code = process.wait()
        self.process = None
        if code < 0:
            name = signal.Signals(-code).name
            return LLMError(f"local: the model process crashed ({name}) while {doing}.",
                            PORTABLE_BUILD_HINT)  # fmt: skip
        return LLMError(f"local: the model process exited with code {code} while {doing}.")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream:
            stream.close()


def serve(path: str, requests: IO[str], replies: IO[str]) -> None:
    """The child: load the model, then answer each request line until stdin closes."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def say(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    try:
        from llama_cpp import Llama
    except (ImportError, OSError) as error:
        say({"error": f"llama-cpp-python cannot be imported ({error}).",
             "hint": PORTABLE_BUILD_HINT})  # fmt: skip
        return
    try:
        llama = Llama(model_path=path, n_ctx=CONTEXT_TOKENS, verbose=False)
    except ValueError:
        say({"error": f"cannot load the model {path!r}.", "hint": "Check that it is a GGUF file."})
        return
    say({"ready": True})
    for line in requests:
        request = json.loads(line)
        try:
            for chunk in llama.create_chat_completion(**request, stream=True):
                if piece := chunk["choices"][0]["delta"].get("content"):
                    say({"piece": piece})
        except ValueError as error:
            say(request_error(error))
            continue
        say({"done": True})


def request_error(error: ValueError) -> dict[str, str]:
    if "context window" in str(error):
        return {"error": "the passages and question do not fit in the model's context.",
                "hint": "A smaller --k makes the prompt shorter."}  # fmt: skip
    return {"error": str(error)}


if __name__ == "__main__":
    # Replies get their own copy of stdout; native code that prints goes to stderr instead.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    serve(sys.argv[1], sys.stdin, replies)
