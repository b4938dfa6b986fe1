"""The prompt templates (the .txt files here) and their strict filling.

`prompts/` at the top of the repository links here.
"""

import re
import string
from functools import lru_cache
from importlib import resources

# A template of two messages holds the system message, a line `---`, then the user message.
SECTIONS = re.compile(r"^---$", re.MULTILINE)


def render_prompt(name: str, **variables: str) -> str:
    """Template `name` filled with exactly the variables it names."""
    return fill(load_template(name), name, **variables)


def render_two_messages(name: str, **variables: str) -> tuple[str, str]:
    """The system message of template `name` as written, and its user message filled."""
    system, user = SECTIONS.split(load_template(name), maxsplit=1)
    return system.strip(), fill(user.strip(), name, **variables)


def fill(template: str, name: str, **variables: str) -> str:
    fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    if fields != variables.keys():
        # A template and its caller out of step is a bug: a prompt must never go out half-filled.
        raise ValueError(f"Prompt {name} uses {sorted(fields)} but was given {sorted(variables)}.")
    return template.format(**variables)


@lru_cache(maxsize=8)
def load_template(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
