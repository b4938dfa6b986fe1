"""Files qa writes for the user (`--out`): whole or not at all, and never in place of a device.

A regular file is replaced through a temporary file and a rename, so it never holds half a
report. A symlink is followed, so the report lands where it points and the link stays. A
device, a FIFO or a terminal (`/dev/stdout`, `/dev/null`, a named pipe) cannot be renamed over
without destroying it, so the text is written to it directly.
"""

import errno
import fcntl
import os
import stat
import tempfile
from pathlib import Path

from qa.atomic_files import write_atomically
from qa.errors import InputError, QAError


def check_output_path(path: Path) -> None:
    """Fail now, not after a long run, if text could not be written to `path`."""
    target = resolved(path)
    mode = _mode(target)
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"Cannot write to {path}: it is a directory.")
    if mode is not None and not stat.S_ISREG(mode):
        if not os.access(target, os.W_OK):
            raise InputError(f"Cannot write to {path}: permission denied.")
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}."):
            pass
    except OSError as error:
        raise InputError(f"Cannot write to {path}: {error.strerror or error}.") from None


def write_output(path: Path, text: str) -> None:
    """Write `text` to `path`: atomically for a regular file, directly for anything else."""
    target = resolved(path)
    mode = _mode(target)
    try:
        if mode is not None and not stat.S_ISREG(mode):
            _write_special(target, text)
        else:
            _replace_regular(target, text)
    except OSError as error:
        raise QAError(f"Cannot write to {path}: {error.strerror or error}.") from None


def resolved(path: Path) -> Path:
    """`path` with every symlink followed, also a dangling one (its target is created)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except OSError:
        return None


def _replace_regular(target: Path, text: str) -> None:
    write_atomically(target, lambda path: path.write_text(text, encoding="utf-8"))


def _write_special(target: Path, text: str) -> None:
    try:
        # Non-blocking, so a FIFO nobody reads is refused at once instead of hanging.
        handle = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise OSError(error.errno, "nothing is reading from it") from None
        raise
    flags = fcntl.fcntl(handle, fcntl.F_GETFL)
    fcntl.fcntl(handle, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
