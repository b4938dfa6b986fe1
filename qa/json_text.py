"""Strict JSON: refuse what Python would read wrongly, fail on later, or read by call depth."""

import json
import math
import re

# No article record or test-set line nests deeper. Python's own limit depends on how deep the
# call stack already is, so without this the same file would load or not by caller.
MAX_JSON_DEPTH = 100
# Only these end a JSON Lines line: a JSON string may hold U+2028 and other characters at
# which str.splitlines() also breaks.
LINE_END = re.compile(r"\r\n|\r|\n")


class UnreadableJSON(ValueError):
    """Text that is not JSON qa can take in; `line` is where the parser stopped, when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def parse_json(text: str) -> object:
    """One JSON value, or UnreadableJSON saying why not.

    Besides malformed text, refuses what Python would read wrongly or fail on later: nesting
    deeper than MAX_JSON_DEPTH, numbers out of range, NaN and Infinity (not JSON, though
    Python reads them), and half of a surrogate pair (text that cannot be encoded).
    """
    try:
        value = json.loads(text, parse_float=finite_float, parse_constant=refuse_constant)
    except UnreadableJSON:
        raise
    except json.JSONDecodeError as error:
        raise UnreadableJSON(error.msg, error.lineno) from None
    except RecursionError:
        raise UnreadableJSON(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError:
        # Python refuses to read integers of more than 4300 digits.
        raise UnreadableJSON("a number has too many digits") from None
    check_json_value(value)
    return value


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text, numbered as an editor numbers them."""
    return LINE_END.split(text)


def finite_float(number: str) -> float:
    value = float(number)
    if math.isinf(value):
        raise UnreadableJSON("a number is out of range")
    return value


def refuse_constant(name: str) -> object:
    raise UnreadableJSON(f"{name} is not a JSON value")


def check_json_value(value: object) -> None:
    """Raise UnreadableJSON for nesting deeper than MAX_JSON_DEPTH or a string that cannot
    be encoded; iterative, as recursion is what deep nesting breaks."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and not encodable(item):
                raise UnreadableJSON("a string holds half of a UTF-16 surrogate pair")
        elif isinstance(item, dict | list):
            if depth == MAX_JSON_DEPTH:
                raise UnreadableJSON(f"nested more than {MAX_JSON_DEPTH} levels deep")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
