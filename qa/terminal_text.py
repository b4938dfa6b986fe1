"""Text from articles and models, made safe to show on a terminal.

An article or a model's reply can hold escape sequences that set the window title, clear the
screen, move the cursor or recolour what follows; a carriage return or a bidirectional
override can make one line look like another. None of them is ever written to a terminal:
they are removed, and newlines and tabs stay.
"""

import re

# C0 controls but tab and newline, DEL, the C1 controls (U+009B is a one-character CSI on
# some terminals), and Unicode's bidirectional embeddings, overrides and isolates.
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` without any character that could drive the terminal."""
    return UNSAFE.sub("", text)
