"""The ONNX graph qa writes from the model's weights: its vectors, its cache, and no torch."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from qa.bundled_model import bundled_model_path
from qa.chunking import ChunkSettings, chunk_article
from qa.loading import load_articles
from qa.onnx_embedder import OnnxEmbedder, weights_digest, weights_file
from tests.conftest import KREMLIN_QUESTION, ROOT, SEED_ARTICLE, SEEDS

MODEL = "all-MiniLM-L6-v2"
NEWS = ROOT.parent / "shared" / "bench" / "realtimeqa" / "corpus.jsonl"
# What the environment without torch leaves out: the torch extra and what only it brings.
ABSENT = ("torch", "functorch", "torchgen", "transformers", "sentence_transformers")
ABSENT += ("scipy", "sklearn", "scikit_learn")
CHUNKS = ChunkSettings(size=900, overlap=150)


@pytest.mark.skipif(not NEWS.is_file(), reason=f"needs the news corpus at {NEWS}")
def test_graph_vectors_match_sentence_transformers_on_2000_news_chunks(tmp_path):
    pytest.importorskip("sentence_transformers", reason='needs pip install -e ".[torch]"')
    from qa.embeddings import load_local_model

    articles = load_articles([NEWS]).articles
    chunks = [chunk.text for article in articles for chunk in chunk_article(article, CHUNKS)]
    chunks = chunks[:2000]
    assert len(chunks) == 2000
    vectors = np.array(OnnxEmbedder(MODEL, tmp_path / "models").embed_documents(chunks))
    expected = load_local_model(MODEL).encode(chunks, batch_size=32, normalize_embeddings=True)
    assert (vectors * expected).sum(axis=1).min() >= 0.99999


def test_graph_cached_by_an_earlier_export_is_not_taken_for_this_one(tmp_path):
    # The name the torch export gave its graph: weights digest alone.
    cache = tmp_path / "home" / "models"
    cache.mkdir(parents=True)
    digest = weights_digest(weights_file(bundled_model_path(MODEL)), cache)
    (cache / f"{MODEL}-{digest[:16]}.onnx").write_bytes(b"a graph written another way")
    # A new process: this one may hold the model already, and a loaded model is not built again.
    env = {**os.environ, "QA_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "qa", "ingest", str(SEEDS)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert len(list(cache.glob(f"{MODEL}-*.onnx"))) == 2


@pytest.fixture(scope="module")
def python_without_torch(tmp_path_factory):
    """A venv's python seeing every installed package but torch, transformers,
    sentence-transformers, scipy and scikit-learn, as after the README's quickstart."""
    venv = tmp_path_factory.mktemp("no-torch") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    paths = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    target = Path(paths.stdout.strip())
    here = {Path(sysconfig.get_paths()[name]) for name in ("purelib", "platlib")}
    for folder in here:
        for entry in folder.iterdir():
            if not is_absent(entry.name) and not (target / entry.name).exists():
                (target / entry.name).symlink_to(entry)
    return python


def is_absent(name: str) -> bool:
    # A package's folder or module (`torch`, `torch.py`) or its metadata (`torch-2.13.0.dist-info`).
    stem = name.split("-")[0].split(".")[0]
    return stem in ABSENT


def qa_without_torch(python: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QA_HOME": str(home)}
    return subprocess.run(
        [str(python), "-m", "qa", *args], capture_output=True, text=True, env=env, cwd=home.parent
    )


def test_ingest_and_ask_run_with_torch_absent_from_the_environment(python_without_torch, tmp_path):
    for module in ("torch", "transformers", "sentence_transformers"):
        probe = subprocess.run([str(python_without_torch), "-c", f"import {module}"])
        assert probe.returncode != 0, f"{module} is importable"

    home = tmp_path / "fresh-home"
    ingest = qa_without_torch(python_without_torch, home, "ingest", str(SEEDS))
    assert ingest.returncode == 0, ingest.stderr
    assert list((home / "models").glob(f"{MODEL}-*.onnx"))
    ask = qa_without_torch(python_without_torch, home, "ask", KREMLIN_QUESTION, "--json")
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert "755" in answer["answer"]
    assert SEED_ARTICLE.stem in {citation["article_id"] for citation in answer["citations"]}


def test_torch_backend_without_the_extra_says_how_to_install_it(
    python_without_torch, tmp_path, monkeypatch
):
    monkeypatch.setenv("QA_EMBEDDING_BACKEND", "torch")
    result = qa_without_torch(python_without_torch, tmp_path / "fresh-home", "ingest", str(SEEDS))
    assert result.returncode == 1
    assert 'pip install "qa-news[torch]"' in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
