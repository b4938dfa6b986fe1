import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa.embeddings import LocalEmbedder, bundled_model_path
from qa.onnx_embedder import OnnxEmbedder
from tests.conftest import KREMLIN_QUESTION, SEEDS, ask_importing_none_of

MODEL = "all-MiniLM-L6-v2"
# What the onnx graph is compared with: sentence-transformers, from the torch extra.
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None,
    reason='needs pip install -e ".[torch]"',
)
SPORT = "The striker scored twice in the second half as the home side won the derby. "
MARKETS = "Bond yields rose after the central bank signalled further rate increases. "
# Sport for about 160 tokens, then markets for 390 more: a vector read up to token 256 mixes
# both; one cut at 128 (tokenizer.json's own limit) or not cut at all leans to one topic.
LONG = SPORT * 10 + MARKETS * 30
TEXTS = [
    "Kremlin",
    "How many diplomats must leave Russia?",
    LONG,
    "Die Bundesregierung äußerte sich am Montag zur Lage in der Ukraine.",
    "Кремль заявил, что США должны сократить дипломатический персонал.",
    "東京の株式市場は続落した。",
    "  Café owners in Zürich 🍰 protest the new rules  ",
    "",
]


@pytest.fixture
def onnx(tmp_path):
    return OnnxEmbedder(MODEL, tmp_path / "models")


def cosines(left, right):
    return (np.array(left) * np.array(right)).sum(axis=1)


@needs_torch
def test_onnx_vectors_match_sentence_transformers_on_varied_texts(onnx):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundled_model_path(MODEL) / "tokenizer.json"))
    tokenizer.no_truncation()
    assert 128 < len(tokenizer.encode(SPORT * 10).ids) < 256 < len(tokenizer.encode(LONG).ids)
    expected = LocalEmbedder(MODEL).embed_documents(TEXTS)
    assert cosines(onnx.embed_documents(TEXTS), expected).min() >= 0.999
    assert np.dot(onnx.embed_query(LONG), expected[2]) >= 0.999


def test_text_past_the_256_token_limit_does_not_change_the_vector(onnx):
    longer = onnx.embed_query(LONG + MARKETS * 30)
    assert np.dot(onnx.embed_query(LONG), longer) >= 0.9999


def test_vectors_come_back_in_input_order_whatever_the_lengths(onnx):
    texts = [f"{index}. {text}" for index, text in enumerate(TEXTS * 10)]
    together = np.array(onnx.embed_documents(texts))
    alone = np.array([onnx.embed_query(text) for text in texts])
    assert (together @ alone.T).argmax(axis=1).tolist() == list(range(len(texts)))
    assert cosines(together, alone).min() >= 0.9999


def test_progress_counts_every_text_once(onnx):
    counts: list[int] = []
    onnx.embed_documents(TEXTS * 10, progress=counts.append)
    assert sum(counts) == len(TEXTS) * 10


def test_ask_after_ingest_never_imports_torch(tmp_path):
    # The first command exports the graph into QA_HOME; the next one must not need torch.
    ingest = subprocess.run(
        [sys.executable, "-m", "qa", "ingest", str(SEEDS)], capture_output=True, text=True
    )
    assert ingest.returncode == 0, ingest.stderr
    assert list((tmp_path / "home" / "models").glob(f"{MODEL}-*.onnx"))
    heavy = ("torch", "transformers", "sentence_transformers", "scipy", "sklearn", "onnx")
    ask = ask_importing_none_of(heavy, dict(os.environ))
    assert ask.returncode == 0, ask.stderr
    assert "755" in json.loads(ask.stdout)["answer"]


@needs_torch
def test_collection_built_with_torch_answers_with_onnx(run, monkeypatch):
    monkeypatch.setenv("QA_EMBEDDING_BACKEND", "torch")
    assert run("ingest", SEEDS).exit_code == 0
    monkeypatch.delenv("QA_EMBEDDING_BACKEND")
    result = run("ask", KREMLIN_QUESTION, "--json")
    assert result.exit_code == 0, result.output
    assert "755" in json.loads(result.stdout)["answer"]


@needs_torch
def test_model_with_other_weights_gets_its_own_graph(tmp_path):
    from safetensors.numpy import load_file, save_file

    # Two folders of one name: only the weights tell them apart.
    original = bundled_model_path(MODEL)
    same = linked_copy(original, tmp_path / "same" / MODEL)
    shutil.copyfile(original / "model.safetensors", same / "model.safetensors")
    other = linked_copy(original, tmp_path / "other" / MODEL)
    weights = load_file(original / "model.safetensors")
    weights["encoder.layer.5.output.dense.weight"] *= 0.5
    save_file(weights, other / "model.safetensors")
    cache = tmp_path / "models"

    vectors = OnnxEmbedder(str(same), cache).embed_documents(TEXTS)
    vectors_other = OnnxEmbedder(str(other), cache).embed_documents(TEXTS)
    assert len(list(cache.glob(f"{MODEL}-*.onnx"))) == 2
    assert cosines(vectors_other, vectors).min() < 0.99
    expected = LocalEmbedder(str(other)).embed_documents(TEXTS)
    assert cosines(vectors_other, expected).min() >= 0.999


def test_failed_export_says_how_to_fall_back_and_leaves_no_graph(run, tmp_path, monkeypatch):
    broken = linked_copy(bundled_model_path(MODEL), tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a model")
    monkeypatch.setenv("QA_EMBEDDING_MODEL", str(broken))
    result = run("ingest", SEEDS)
    assert result.exit_code == 1
    assert "export" in result.stderr and "QA_EMBEDDING_BACKEND=torch" in result.stderr
    assert not [path for path in (tmp_path / "home" / "models").iterdir() if ".onnx" in path.name]


def linked_copy(folder, target):
    """The model folder's files as symlinks, except the weights, which callers write."""
    target.mkdir(parents=True)
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "model.safetensors":
            (target / path.relative_to(folder)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(folder)).symlink_to(path)
    return target
