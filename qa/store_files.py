"""Check the embedded store's files before Chroma opens them.

Chroma answers from a damaged vector index without a word (wrong passages) or dies in native
code, and reads an emptied database as a new, empty store. The checks here look at file sizes
and headers, and at a fixed sample of the vector index's entries (their links must point
inside the index and their vectors be unit length), so they cost the same at any size.
"""

import struct
from pathlib import Path

import numpy as np

from qa.errors import StoreError

DATABASE = "chroma.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_HEADER_BYTES = 100
# hnswlib's index header as Chroma writes it (format version 1): version, then size_t
# offset_level0, max_elements, element count, bytes per element, ...; 100 bytes in all.
HNSW_HEADER = "header.bin"
HNSW_HEADER_SIZE = 100
HNSW_HEADER_FIELDS = struct.Struct("<iQQQQ")
# The whole header: the fields above, then label_offset, offset_data, max_level, entry point,
# max_m, max_m0, m, mult, ef_construction.
HNSW_FULL_HEADER = struct.Struct("<iQQQQQQiIQQQdQ")
HNSW_VERSION = 1
# length.bin holds one float32 (the vector's norm) per element.
LENGTH_ENTRY_BYTES = 4
# Entries of the vector index read at each open, spread evenly over it.
SAMPLED_ENTRIES = 64
# A cosine index keeps its vectors normalised; float32 rounding stays far inside this.
UNIT_NORM_TOLERANCE = 1e-3
METADATA_PICKLE = "index_metadata.pickle"


def check_store_files(path: Path) -> None:
    """Raise a StoreError naming the damaged file and the way back, if any is damaged."""
    database = path / DATABASE
    if database.exists():
        problem = database_problem(database)
        if problem:
            raise damaged(path, database, problem)
    for header in sorted(path.glob(f"*/{HNSW_HEADER}")):
        problem = hnsw_problem(header.parent)
        if problem:
            raise damaged(path, header.parent, problem)


def database_problem(database: Path) -> str | None:
    """What the SQLite header says is wrong: not SQLite at all, or shorter than it claims."""
    with database.open("rb") as file:
        header = file.read(SQLITE_HEADER_BYTES)
    if not header.startswith(SQLITE_MAGIC):
        return "is not an SQLite database (empty or overwritten)"
    if len(header) < SQLITE_HEADER_BYTES:
        return "is truncated"
    (page_size,) = struct.unpack_from(">H", header, 16)
    changes, pages = struct.unpack_from(">II", header, 24)
    (valid_for,) = struct.unpack_from(">I", header, 92)
    # The page count is trusted only when the header says it is current, and pages may still
    # wait in the write-ahead log.
    wal = database.with_name(database.name + "-wal")
    if changes == valid_for and file_size(wal) <= 0:
        expected = (65536 if page_size == 1 else page_size) * pages
        if database.stat().st_size < expected:
            return "is truncated"
    return None


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
    if count == 0:
        return None  # nothing written to disk yet, and no id map either
    return sampled_entries_problem(folder, header) or metadata_problem(folder)


def sampled_entries_problem(folder: Path, header: bytes) -> str | None:
    """What is wrong with a sample of the index's entries: their neighbour links, read as is by
    native code, and their vectors."""
    (_, level0, _, count, element_bytes, _, data_offset, _, entry, _, max_m0, _, _, _) = (
        HNSW_FULL_HEADER.unpack_from(header)
    )
    if count == 0:
        return None
    dimensions = (element_bytes - data_offset - 8) // 4
    if entry >= count or data_offset != 4 + 4 * max_m0 or dimensions <= 0:
        return "has a header whose entry point or layout does not fit its size"
    picks = sorted({*np.linspace(0, count - 1, min(count, SAMPLED_ENTRIES)).astype(int), entry})
    data = np.memmap(folder / "data_level0.bin", dtype=np.uint8, mode="r")
    for pick in picks:
        at = level0 + pick * element_bytes
        links = data[at : at + data_offset].view(np.uint32)
        degree = int(links[0] & 0xFFFF)
        if degree > max_m0 or (links[1 : 1 + degree] >= count).any():
            return "data_level0.bin holds links that point outside the index"
        vector = data[at + data_offset : at + data_offset + 4 * dimensions].view(np.float32)
        norm = float(np.sqrt(np.dot(vector.astype(np.float64), vector)))
        if not abs(norm - 1.0) <= UNIT_NORM_TOLERANCE:
            return "data_level0.bin holds vectors that are not what was stored"
    return None


def metadata_problem(folder: Path) -> str | None:
    """The index's id map, a pickle: missing, or not a whole pickle (start and end marks)."""
    path = folder / METADATA_PICKLE
    try:
        with path.open("rb") as file:
            start = file.read(1)
            file.seek(-1, 2)
            end = file.read(1)
    except FileNotFoundError:
        return f"has no {METADATA_PICKLE} (the map from vectors to chunks)"
    except OSError:
        return f"has an unreadable {METADATA_PICKLE}"
    if start != b"\x80" or end != b".":
        return f"has a {METADATA_PICKLE} that is not a whole pickle"
    return None


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


def damaged(store: Path, where: Path, problem: str) -> StoreError:
    return StoreError(
        f"The store at {store} is damaged: {where.name} {problem}.",
        f"Move {store} aside (or delete it) and run `qa ingest` again on your articles.",
    )
