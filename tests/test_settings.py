"""Settings: every documented variable reaches its section, flags win, defaults live once."""

import ast
import re

import pytest

from qa.settings import FLAGS, get_settings
from tests.conftest import ROOT

# A value for each variable the README documents, and where it must land.
VARIABLES = {
    "QA_HOME": ("/tmp/qa-settings-home", "store.home", "/tmp/qa-settings-home"),
    "QA_COLLECTION": ("news", "store.collection", "news"),
    "QA_CHROMA_URL": ("http://127.0.0.1:9", "store.chroma_url", "http://127.0.0.1:9"),
    "QA_CHROMA_TIMEOUT": ("5", "store.chroma_timeout", 5.0),
    "QA_CHUNK_SIZE": ("500", "chunking.size", 500),
    "QA_CHUNK_OVERLAP": ("50", "chunking.overlap", 50),
    "QA_CHUNK_HEADER": ("true", "chunking.header", True),
    "QA_EMBEDDINGS": ("openai", "embeddings.provider", "openai"),
    "QA_EMBEDDING_MODEL": ("m", "embeddings.model", "m"),
    "QA_EMBEDDING_BACKEND": ("torch", "embeddings.backend", "torch"),
    "QA_MODEL_CACHE": (
        "/tmp/qa-settings-models",
        "embeddings.model_cache",
        "/tmp/qa-settings-models",
    ),
    "QA_EMBEDDING_BASE_URL": ("http://127.0.0.1:8", "embeddings.base_url", "http://127.0.0.1:8"),
    "QA_EMBEDDING_API_KEY": ("emb-key-0123456789", "embeddings.api_key", "emb-key-0123456789"),
    "QA_EMBEDDING_CONCURRENCY": ("2", "embeddings.concurrency", 2),
    "QA_EMBEDDING_BATCH_SIZE": ("8", "embeddings.batch_size", 8),
    "QA_LLM": ("extractive", "llm.name", "extractive"),
    "QA_MODEL": ("gpt-x", "llm.model", "gpt-x"),
    "QA_LOCAL_MODEL": ("/tmp/m.gguf", "llm.local_model", "/tmp/m.gguf"),
    "QA_BASE_URL": ("http://127.0.0.1:7/v1", "llm.base_url", "http://127.0.0.1:7/v1"),
    "QA_TEMPERATURE": ("0.5", "llm.temperature", 0.5),
    "QA_TIMEOUT": ("9", "llm.timeout", 9.0),
    "QA_MAX_RETRIES": ("0", "llm.max_retries", 0),
    "QA_MAX_REPLY_KB": ("64", "llm.max_reply_kb", 64.0),
    "QA_FETCH_TIMEOUT": ("3", "fetch.timeout", 3.0),
    "QA_FETCH_CONCURRENCY": ("2", "fetch.concurrency", 2),
    "QA_FETCH_ALLOW_PRIVATE": ("1", "fetch.allow_private", True),
    "QA_FETCH_HOST_DELAY": ("0", "fetch.host_delay", 0.0),
    "QA_MAX_PAGE_MB": ("2", "fetch.max_page_mb", 2.0),
    "QA_REFETCH": ("1", "fetch.refetch", True),
    "QA_K": ("3", "k", 3),
    "QA_RETRIEVAL": ("dense", "retrieval", "dense"),
    "QA_MAX_ARTICLE_MB": ("1", "max_article_mb", 1.0),
}
# Read where they are used, not by Settings.
NOT_SETTINGS = {"QA_", "QA_DEBUG"}


def value_at(settings, path: str):
    for part in path.split("."):
        settings = getattr(settings, part)
    if hasattr(settings, "get_secret_value"):
        return settings.get_secret_value()
    return str(settings) if hasattr(settings, "as_posix") else settings


def test_every_variable_the_readme_names_is_read_into_its_section(monkeypatch):
    documented = set(re.findall(r"QA_[A-Z_]*", (ROOT / "README.md").read_text())) - NOT_SETTINGS
    assert documented == set(VARIABLES)
    for name, (raw, _, _) in VARIABLES.items():
        monkeypatch.setenv(name, raw)
    settings = get_settings()
    for name, (_, path, expected) in VARIABLES.items():
        assert value_at(settings, path) == expected, name


def test_a_flag_wins_over_its_variable_and_leaves_the_section_s_others(monkeypatch):
    monkeypatch.setenv("QA_CHUNK_SIZE", "500")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "50")
    settings = get_settings(chunk_size=700, k=2)
    assert (settings.chunking.size, settings.chunking.overlap, settings.k) == (700, 50, 2)
    changed = settings.with_flags(llm="extractive", collection="other")
    assert (changed.llm.name, changed.store.collection, changed.chunking.size) == (
        "extractive",
        "other",
        700,
    )


def test_the_openai_variables_keep_their_standard_names(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:6/v1")
    settings = get_settings()
    assert settings.llm.api_key.get_secret_value() == "sk-test-0123456789"
    assert settings.llm.base_url == "http://127.0.0.1:6/v1"
    assert "sk-test" not in repr(settings) and "sk-test" not in str(settings.to_json())


def test_a_variable_named_like_a_field_without_the_prefix_is_not_read(monkeypatch):
    # HOME, PROVIDER or NAME in a shell are not qa's.
    monkeypatch.setenv("PROVIDER", "openai")
    monkeypatch.setenv("NAME", "local")
    settings = get_settings()
    assert (settings.embeddings.provider, settings.llm.name) == ("local", "auto")


def test_every_flag_name_is_a_field_of_its_section():
    settings = get_settings()
    for flag, (section, field) in FLAGS.items():
        assert hasattr(getattr(settings, section), field), flag
    with pytest.raises(TypeError):
        get_settings(chunk_sise=100)


def test_only_the_settings_module_reads_the_environment():
    readers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "qa").rglob("*.py")
        if "os.environ" in path.read_text() or "getenv(" in path.read_text()
    ]
    assert readers == ["qa/settings.py"]


def test_no_class_in_qa_is_over_250_lines():
    long = []
    for path in (ROOT / "qa").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250:
                long.append(f"{path.name}:{node.name}")
    assert long == []
