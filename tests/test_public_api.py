"""The Python API: the names `qa` offers, what the README's examples import, and its cost."""

import os
import re
import subprocess
import sys

import qa
from tests.conftest import ROOT, SEED_ARTICLE

API = [
    "Answer",
    "Citation",
    "NewsQAChain",
    "NewsRetriever",
    "Passage",
    "QAError",
    "Settings",
    "Workspace",
    "__version__",
    "get_settings",
]


def test_the_api_is_exactly_these_names_and_each_resolves():
    assert sorted(qa.__all__) == API
    for name in qa.__all__:
        assert getattr(qa, name) is not None
    assert sorted(name for name in dir(qa) if not name.startswith("_")) == sorted(
        name for name in API if not name.startswith("_")
    )


def test_the_readme_examples_import_only_the_api():
    readme = (ROOT / "README.md").read_text()
    examples = "\n".join(re.findall(r"```python\n(.*?)```", readme, re.S))
    imported = re.findall(r"^\s*from (qa[\w.]*) import ([\w, ]+)", examples, re.M)
    assert imported, "the README shows no Python example"
    for module, names in imported:
        assert module == "qa", f"the README imports from {module}, not from qa"
        assert {name.strip() for name in names.split(",")} <= set(qa.__all__)


def test_the_readme_python_example_runs_as_shown(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S)
                   if "Workspace(" in block)  # fmt: skip
    env = {**os.environ, "QA_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "1 articles added" in done.stdout
    assert "755 people" in done.stdout
    assert re.search(rf"^\[1\] .+ \(2017-08-06\) {SEED_ARTICLE.stem}:\d+-\d+$", done.stdout, re.M)


def test_importing_qa_loads_none_of_the_heavy_packages():
    probe = (
        "import sys, qa; "
        "print(','.join(m for m in ('chromadb', 'langchain_core', 'onnxruntime', 'numpy', "
        "'openai', 'rich') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == ""
