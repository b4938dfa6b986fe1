import qa.answerers
from qa.answerers import chosen
from qa.settings import get_settings


def test_every_answerer_shipped_is_offered_by_name():
    assert qa.answerers.names() == ("auto", "extractive", "local", "openai")


def test_auto_answers_with_openai_once_a_key_or_a_server_is_configured(monkeypatch):
    assert chosen(get_settings()) == "extractive"
    assert chosen(get_settings(base_url="http://127.0.0.1:8080/v1")) == "openai"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    assert chosen(get_settings()) == "openai"
    assert chosen(get_settings(llm="extractive")) == "extractive"
