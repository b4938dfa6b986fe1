"""Asking never writes qa's own derived files: it answers from read-only folders."""

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from qa.keyword_index import FILE_NAME
from tests.conftest import KREMLIN_QUESTION, SEED_ARTICLE, SEEDS

NOBODY = 65534


@pytest.fixture
def home(monkeypatch):
    """A data directory another user may enter: the read-only runs are made as `nobody`."""
    folder = Path(tempfile.mkdtemp(prefix="qa-read-only-"))
    folder.chmod(0o755)
    monkeypatch.setenv("QA_HOME", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def derived_folders(home: Path) -> list[Path]:
    """Every folder of the data directory but Chroma's own (which Chroma must write)."""
    return [path for path in home.iterdir() if path.is_dir() and path.name != "chroma"]


def snapshot(folders: list[Path]) -> dict[str, tuple[int, int, bytes]]:
    """Every file's size, time and bytes; not SQLite's shared-memory file, in which any reader
    of a WAL database marks what it reads, nor an empty log it opens to read from."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns, path.read_bytes())
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and not path.name.endswith("-shm")
        and not (path.name.endswith("-wal") and path.stat().st_size == 0)
    }


def make_read_only(folders: list[Path]) -> None:
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) | stat.S_IROTH)
            if path.is_dir():
                path.chmod(path.stat().st_mode | stat.S_IXOTH)


def open_to_everyone(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)


def ask_as_reader(question: str, *options: str) -> subprocess.CompletedProcess:
    """`qa ask` in a new process; as `nobody` when this runs as root, whom no mode bit stops."""
    command = [sys.executable, "-m", "qa", "ask", question, "--json", *options]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only folder stops no one")
        command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    env = {**os.environ, "HOME": os.environ["QA_HOME"], "ANONYMIZED_TELEMETRY": "False"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_a_question_changes_no_derived_file(run, home):
    assert run("ingest", SEEDS).exit_code == 0
    folders = derived_folders(home)
    assert list(home.rglob(FILE_NAME))
    before = snapshot(folders)
    for retrieval in ("hybrid", "keyword"):
        result = run("ask", KREMLIN_QUESTION, "--retrieval", retrieval, "--json")
        assert result.exit_code == 0, result.output
    assert snapshot(derived_folders(home)) == before


@pytest.mark.parametrize("model_cached", [True, False], ids=["model-cached", "no-model-graph"])
def test_a_question_is_answered_with_the_derived_folders_read_only(run, home, model_cached):
    assert run("ingest", SEEDS).exit_code == 0
    if not model_cached:
        for graph in (home / "models").glob("*.onnx"):
            graph.unlink()
    folders = derived_folders(home)
    before = snapshot(folders)
    make_read_only(folders)
    open_to_everyone(home / "chroma")
    done = ask_as_reader(KREMLIN_QUESTION)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["short_answer"] == "755 people"
    assert answer["citations"][0]["article_id"] == SEED_ARTICLE.stem
    assert snapshot(folders) == before


def qa(*args: str) -> subprocess.CompletedProcess:
    """`qa ARGS` in a process of its own: no connection to the index outlives it."""
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    command = [sys.executable, "-m", "qa", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_an_index_behind_the_store_is_caught_up_in_memory_not_on_disk(home, tmp_path):
    assert qa("ingest", SEEDS).returncode == 0
    (index,) = home.rglob(FILE_NAME)
    stale = tmp_path / "stale.sqlite3"
    with closing(sqlite3.connect(index)) as source, closing(sqlite3.connect(stale)) as copy:
        source.backup(copy)
    ferry = tmp_path / "ferry.txt"
    ferry.write_text("date 2024-05-01\nThe harbour ferry Zephyrine now sails at noon.\n")
    assert qa("ingest", ferry).returncode == 0
    # The index as another machine's writes through a server would leave it: behind.
    for leftover in index.parent.glob(FILE_NAME + "*"):
        leftover.unlink()
    shutil.copy(stale, index)
    before = snapshot([index.parent])
    done = qa("ask", "Zephyrine", "--retrieval", "keyword", "--json")
    assert done.returncode == 0, done.stderr
    assert [p["article_id"] for p in json.loads(done.stdout)["passages"]] == ["ferry"]
    assert snapshot([index.parent]) == before


def test_a_missing_index_is_built_by_the_first_question_and_kept(home):
    # As on a machine that only asks a Chroma server others write to: without its index,
    # every cold question would read the whole collection again.
    assert qa("ingest", SEEDS).returncode == 0
    (index,) = home.rglob(FILE_NAME)
    for path in index.parent.glob(FILE_NAME + "*"):
        path.unlink()
    done = qa("ask", KREMLIN_QUESTION, "--retrieval", "keyword", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["short_answer"] == "755 people"
    assert index.is_file()
    before = snapshot([index.parent])
    assert qa("ask", KREMLIN_QUESTION, "--json").returncode == 0
    assert snapshot([index.parent]) == before
