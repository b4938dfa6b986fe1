"""A damaged embedded store is named as such before anything is answered from it."""

import json
import os
import shutil
from pathlib import Path

import pytest

from qa.keyword_index import FILE_NAME
from qa.store_files import HNSW_HEADER, HNSW_HEADER_FIELDS
from tests.conftest import KREMLIN_QUESTION, SEEDS

# Chroma writes its vector index to disk once a thousand or so vectors are waiting.
STORIES = [
    {"id": f"story-{n}", "title": f"Story {n}", "text": f"Ferry {n} sails to the harbour at {n}."}
    for n in range(1200)
]


@pytest.fixture
def home_with_index(run, tmp_path):
    """A store whose vector index has been written to disk."""
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "stories.jsonl").write_text("".join(json.dumps(s) + "\n" for s in STORIES))
    home = tmp_path / "home"
    result = run("ingest", corpus, "--home", home)
    assert result.exit_code == 0, result.output
    assert indexed_count(home) > 0
    return home


def index_folder(home: Path) -> Path:
    """The folder of the chunk collection's vector index (the largest one)."""
    data = max((home / "chroma").glob("*/data_level0.bin"), key=lambda p: p.stat().st_size)
    return data.parent


def indexed_count(home: Path) -> int:
    header = (index_folder(home) / HNSW_HEADER).read_bytes()
    return HNSW_HEADER_FIELDS.unpack_from(header)[3]


def assert_damage_reported(result, *phrases):
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is damaged" in result.stderr and "qa ingest" in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr


@pytest.mark.parametrize("name", ["data_level0.bin", "header.bin", "length.bin"])
def test_a_truncated_vector_index_file_stops_questions_with_the_way_back(
    run, home_with_index, name
):
    damaged = index_folder(home_with_index) / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    assert_damage_reported(run("ask", KREMLIN_QUESTION, "--home", home_with_index), name)
    assert_damage_reported(run("ingest", SEEDS, "--home", home_with_index), name)


def test_an_emptied_database_is_damage_not_an_empty_store(run, tmp_path):
    home = tmp_path / "home"
    assert run("ingest", SEEDS, "--home", home).exit_code == 0
    (home / "chroma" / "chroma.sqlite3").write_bytes(b"")
    assert_damage_reported(run("sources", "--home", home), "not an SQLite database")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_a_damaged_keyword_index_is_built_again_and_questions_are_answered(run, tmp_path, damage):
    home = tmp_path / "home"
    assert run("ingest", SEEDS, "--home", home).exit_code == 0
    (index,) = (home / "index").glob(f"*/{FILE_NAME}")
    for leftover in index.parent.glob(f"{FILE_NAME}-*"):
        leftover.unlink()
    if damage == "truncate":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    elif damage == "garbage":
        overwrite(index, os.urandom(index.stat().st_size - 100), at=100)
    else:
        index.unlink()
    result = run("ask", KREMLIN_QUESTION, "--json", "--home", home)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["short_answer"] == "755 people"


def overwrite(path: Path, data: bytes, at: int = 0) -> None:
    with path.open("r+b") as file:
        file.seek(at)
        file.write(data)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("data_level0.bin", "random"),
        ("data_level0.bin", "zeros"),
        ("index_metadata.pickle", "delete"),
        ("index_metadata.pickle", "random"),
    ],
)
def test_overwritten_vector_index_files_are_damage_for_questions_and_ingest(
    run, home_with_index, name, damage
):
    target = index_folder(home_with_index) / name
    size = target.stat().st_size
    if damage == "delete":
        target.unlink()
    else:
        data = os.urandom(size) if damage == "random" else bytes(size)
        overwrite(target, data)
    for args in (("ask", KREMLIN_QUESTION, "--retrieval", "dense"), ("ask", KREMLIN_QUESTION)):
        assert_damage_reported(run(*args, "--home", home_with_index), name)
    # An ingest of articles already there must not call the store unchanged.
    assert_damage_reported(run("ingest", SEEDS, "--home", home_with_index), name)


@pytest.mark.parametrize("damage", ["truncate", "random-pages"])
def test_a_damaged_database_is_named_with_the_way_back(run, home_with_index, damage):
    database = home_with_index / "chroma" / "chroma.sqlite3"
    size = database.stat().st_size
    if damage == "truncate":
        os.truncate(database, size // 3)
    else:
        overwrite(database, os.urandom(size - 8192), at=8192)
    assert_damage_reported(run("sources", "--home", home_with_index), "chroma.sqlite3")
    assert_damage_reported(run("ask", KREMLIN_QUESTION, "--home", home_with_index))
