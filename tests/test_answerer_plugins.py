"""Answerers from other packages: a distribution that registers one in `qa.answerers`."""

import json
import os
import subprocess
import textwrap
from pathlib import Path

from qa.loading import load_articles
from tests.conftest import KREMLIN_QUESTION, SEED_ARTICLE
from tests.servers import venv_tool

# A whole answerer in a package of its own: it writes the top passage's first sentence word by
# word, and qa checks the citation it gives.
FIRST_SENTENCE = """
from qa.answerers.kind import Kind
from qa.citations import checked_answer
from qa.sentences import split_sentences
from qa.types import AnswerStream


class FirstSentence:
    name, model, complete, parameters = "firstline", None, None, None

    def answer(self, question, passages, *, as_of=None, stream=True):
        return AnswerStream(self.write(question, passages))

    def write(self, question, passages):
        draft = f"{split_sentences(passages[0].text)[0].text} [1]"
        for word in draft.split(" "):
            yield word + " "
        return checked_answer(question, draft, passages, self.name, self.model)


def build(settings, embedder):
    return FirstSentence()


KIND = Kind("firstline", "the top passage's first sentence", build)
"""


def write_distribution(
    site: Path, name: str, modules: dict[str, str], answerers: dict[str, str]
) -> None:
    """Install `name` 0.1 into `site` as pip would: its modules and a .dist-info naming its
    `qa.answerers` entry points."""
    site.mkdir(exist_ok=True)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    entries = "".join(f"{answerer} = {target}\n" for answerer, target in answerers.items())
    (info / "entry_points.txt").write_text(f"[qa.answerers]\n{entries}")


def qa_with(site: Path, *args: str) -> subprocess.CompletedProcess:
    """`qa ARGS...` in a process of its own, with `site` on its PYTHONPATH."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [venv_tool("qa"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=300,
    )


def test_an_installed_package_answers_through_qa_ask_with_checked_citations(seeded, tmp_path):
    site = tmp_path / "site"
    write_distribution(
        site, "qa-first-sentence", {"qa_first_sentence": FIRST_SENTENCE},
        {"firstline": "qa_first_sentence:KIND"},
    )  # fmt: skip
    listed = qa_with(site, "ask", "--help")
    assert "extractive, local, openai, firstline" in " ".join(listed.stdout.split())

    result = qa_with(site, "ask", KREMLIN_QUESTION, "--llm", "firstline", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answerer"] == "firstline"
    (citation,) = answer["citations"]
    assert answer["answer"] == f"{citation['quote']} [1]"
    article = load_articles([SEED_ARTICLE]).articles[0]
    assert article.text[citation["start"] : citation["end"]] == citation["quote"]
    assert citation["article_id"] == SEED_ARTICLE.stem


def test_a_broken_package_is_one_line_naming_it_and_the_built_in_answerers_work(seeded, tmp_path):
    site = tmp_path / "site"
    write_distribution(
        site,
        "qa-broken",
        {
            "qa_broken_import": "import a_module_nobody_installed\n",
            "qa_broken_no_kind": "ANSWERER = None\n",
        },
        {
            "missing": "qa_broken_import:KIND",
            "kindless": "qa_broken_no_kind:KIND",
            "extractive": "qa_broken_no_kind:KIND",
        },
    )
    for name, reason in (("missing", "a_module_nobody_installed"), ("kindless", "KIND")):
        result = qa_with(site, "ask", KREMLIN_QUESTION, "--llm", name)
        assert result.returncode == 1, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"Error: The answerer '{name}' of qa-broken 0.1 cannot be loaded")
        assert reason in line
        assert result.stdout == ""

    # The package's claim to a name of qa's own is passed over, and said to be.
    result = qa_with(site, "ask", KREMLIN_QUESTION, "--llm", "extractive")
    assert result.returncode == 0, result.stderr
    assert "755 people" in result.stdout and "answered by extractive" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert "'extractive' of qa-broken 0.1 is not used" in line
    assert "Traceback" not in result.stderr
