import json
import textwrap

import pytest

import qa.answerers
from tests.conftest import KREMLIN_QUESTION

# A whole new answerer: one module that declares KIND, and nothing else edited.
NEW_ANSWERER = """
from qa.answerers.kind import Kind
from qa.types import Answer


class TopStory:
    name, model, complete, parameters = "topstory", None, None, None

    def answer(self, question, passages, *, as_of=None, on_token=None):
        text = f"See article {passages[0].article_id}."
        return Answer(question, text, [], passages, abstained=False, answerer=self.name)


KIND = Kind("topstory", "names the top story", lambda settings, embedder: TopStory())
"""


@pytest.fixture
def new_answerer_module(tmp_path, monkeypatch):
    folder = tmp_path / "more_answerers"
    folder.mkdir()
    (folder / "topstory.py").write_text(textwrap.dedent(NEW_ANSWERER))
    monkeypatch.setattr(qa.answerers, "__path__", [*qa.answerers.__path__, str(folder)])
    qa.answerers.kinds.cache_clear()
    yield
    qa.answerers.kinds.cache_clear()


def test_a_new_answerer_module_is_all_it_takes_to_answer_with_it(seeded, new_answerer_module):
    result = seeded("ask", KREMLIN_QUESTION, "--llm", "topstory", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["answerer"] == "topstory"
    assert answer["answer"] == "See article 000_0ae6590b4ea8367e."

    unknown = seeded("ask", KREMLIN_QUESTION, "--llm", "topstories")
    assert unknown.exit_code == 2
    assert "use auto, extractive, local, openai, topstory" in unknown.stderr


def test_every_answerer_shipped_is_offered_by_name():
    assert qa.answerers.names() == ("auto", "extractive", "local", "openai")
