"""Hide secrets in text about to be printed: URLs' passwords and keys, the configured API key."""

import re
from collections.abc import Iterable, Iterator

from qa.settings import environment_secrets

MASK = "***"
# `scheme://user:password@host`: everything between `//` and `@` goes.
USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
# A query or form parameter whose name says it carries a credential.
SECRET_PARAMETER = re.compile(
    r"(?i)([?&;](?:[\w-]*(?:key|token|secret|password|passwd|pwd|auth|signature|sig)[\w-]*)=)"
    r"[^&;#\s\"']+"
)
# Shorter values would mask ordinary words; real keys are far longer.
MIN_SECRET_CHARS = 8


def mask_secrets(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with credentials in URLs and every known secret value replaced by ***."""
    text = USERINFO.sub(f"{MASK}@", text)
    text = SECRET_PARAMETER.sub(rf"\1{MASK}", text)
    for secret in (*secrets, *configured_secrets()):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, MASK)
    return text


def configured_secrets() -> tuple[str, ...]:
    """The API keys set in the environment, as they would be sent."""
    return environment_secrets()


def masked_stream(pieces: Iterable[str]) -> Iterator[str]:
    """`pieces` of a streamed reply with the configured secrets masked, even one split across
    pieces: just enough text is held back to see a whole secret before it is passed on."""
    secrets = [secret for secret in configured_secrets() if len(secret) >= MIN_SECRET_CHARS]
    if not secrets:
        yield from pieces
        return
    hold = max(map(len, secrets)) - 1
    held = ""
    for piece in pieces:
        held = mask_secrets(held + piece)
        if len(held) > hold:
            yield held[: len(held) - hold]
            held = held[len(held) - hold :]
    if held:
        yield mask_secrets(held)
