"""Check the embedded store's files before Chroma opens them.

Chroma answers from a damaged vector index without a word (wrong passages) or dies in native
code, and reads an emptied database as a new, empty store. The checks here look only at file
sizes and headers, so they cost a few stat calls per run.
"""

import struct
from pathlib import Path

from qa.errors import StoreError

DATABASE = "chroma.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"
# hnswlib's index header as Chroma writes it (format version 1): version, then size_t
# offset_level0, max_elements, element count, bytes per element, ...; 100 bytes in all.
HNSW_HEADER = "header.bin"
HNSW_HEADER_SIZE = 100
HNSW_HEADER_FIELDS = struct.Struct("<iQQQQ")
HNSW_VERSION = 1
# length.bin holds one float32 (the vector's norm) per element.
LENGTH_ENTRY_BYTES = 4


def check_store_files(path: Path) -> None:
    """Raise a StoreError naming the damaged file and the way back, if any is damaged."""
    database = path / DATABASE
    if database.exists():
        with database.open("rb") as file:
            start = file.read(len(SQLITE_MAGIC))
        if start != SQLITE_MAGIC:
            raise damaged(path, database, "is not an SQLite database (empty or overwritten)")
    for header in sorted(path.glob(f"*/{HNSW_HEADER}")):
        problem = hnsw_problem(header.parent)
        if problem:
            raise damaged(path, header.parent, problem)


def hnsw_problem(folder: Path) -> str | None:
    """What is wrong with one persisted vector index, or None if its files fit its header."""
    header = (folder / HNSW_HEADER).read_bytes()
    if len(header) != HNSW_HEADER_SIZE:
        return f"has a {len(header)}-byte {HNSW_HEADER} (expected {HNSW_HEADER_SIZE})"
    version, _, _, count, element_bytes = HNSW_HEADER_FIELDS.unpack_from(header)
    if version != HNSW_VERSION:
        return None  # a format this check does not know; Chroma reads it
    # Chroma writes element data ahead of the header's count, so files may be longer than
    # the count implies, never shorter.
    needed = {
        "data_level0.bin": count * element_bytes,
        "length.bin": count * LENGTH_ENTRY_BYTES,
    }
    for name, size in needed.items():
        actual = file_size(folder / name)
        if actual < size:
            return f"has {name} of {actual} bytes where its header needs {size}"
    return None


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


def damaged(store: Path, where: Path, problem: str) -> StoreError:
    return StoreError(
        f"The store at {store} is damaged: {where.name} {problem}.",
        f"Move {store} aside (or delete it) and run `qa ingest` again on your articles.",
    )
