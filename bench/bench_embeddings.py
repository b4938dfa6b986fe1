"""Ingest through an OpenAI-compatible embeddings server: chunks/s against requests in flight.

The same slice of a corpus is ingested into a fresh store each time:
- local: the bundled model run by ONNX Runtime in this process, as `qa ingest` does by
  default (the baseline, measured in the same run); the vectors it makes are kept;
- server: QA_EMBEDDINGS=openai against the loopback server of tests/embedding_server.py,
  which answers with those vectors after a fixed delay per request (50 ms: a remote GPU's
  latency), at each QA_EMBEDDING_CONCURRENCY asked for;
- instant: the same server answering at once: qa's own ceiling, what ingest costs outside
  embedding (reading, chunking, requests and replies, journal, Chroma and keyword writes);
- Chroma alone: the local run's chunks and article records upserted straight into new
  collections, in qa's write batches: the part of that ceiling that is Chroma's own.
The server runs in a process of its own, so its work is not counted as qa's. After every run
the questions are searched and their passages checked to be the local run's, in order.

    python bench/bench_embeddings.py --corpus ../shared/bench/realtimeqa/corpus.jsonl \
        --articles 200
"""

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.settings import get_settings  # noqa: E402
from tests.embedding_server import serve_in_child  # noqa: E402

REALTIMEQA = ROOT.parent / "shared" / "bench" / "realtimeqa"
MODEL = "all-MiniLM-L6-v2"
QUESTIONS = 20
WARM_UP = "warm-up"


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qa-bench-embeddings-") as tmp:
        folder = Path(tmp)
        corpus = write_slice(args.corpus, args.articles, corpus_path(folder))
        questions = pick_questions(args.questions, corpus)
        local, vectors = ingest_locally(args, corpus, questions, folder / "local")
        runs = [("local (ONNX, in process)", local)]
        for concurrency in args.concurrency:
            name = f"server, {args.delay * 1000:g} ms/request, {concurrency} in flight"
            runs.append((name, ingest_through_server(args, corpus, questions, vectors,
                                                     args.delay, concurrency, folder)))  # fmt: skip
        ceiling = ingest_through_server(
            args, corpus, questions, vectors, 0.0, max(args.concurrency), folder
        )
        runs.append((f"instant server, {max(args.concurrency)} in flight (qa's ceiling)", ceiling))
        runs.append(("Chroma alone: the same writes, no qa", chroma_alone(folder / "local")))
    summary = summarise(args, corpus, questions, runs, local, time.perf_counter() - started)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA / "corpus.jsonl")
    parser.add_argument("--articles", type=int, default=200, help="first N articles of it")
    parser.add_argument(
        "--questions",
        type=Path,
        default=REALTIMEQA / "questions.jsonl",
        help="test set; its questions about the slice's articles are searched (at most 20)",
    )
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per request")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 2, 4, 8],
        help="requests in flight, comma-separated",
    )
    parser.add_argument(
        "--batch-size", type=int, help="texts per request (default: QA_EMBEDDING_BATCH_SIZE's)"
    )
    parser.add_argument(
        "--model-cache", type=Path, default=ROOT / "bench" / "results" / "models",
        help="where the exported ONNX graph is kept",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    return parser.parse_args()


def write_slice(corpus: Path, articles: int, path: Path) -> list[dict]:
    """The corpus's first `articles` records, written to `path`."""
    with corpus.open() as lines:
        records = [json.loads(line) for line in itertools.islice(lines, articles)]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return records


def corpus_path(folder: Path) -> Path:
    return folder / "corpus.jsonl"


def pick_questions(questions: Path | None, corpus: list[dict]) -> list[str]:
    """Questions about articles of the slice; else the articles' titles."""
    ids = {record["id"] for record in corpus}
    picked = []
    if questions and questions.is_file():
        for line in questions.read_text().splitlines():
            question = json.loads(line)
            if ids & set(question.get("article_ids") or [question.get("article_id")]):
                picked.append(question["question"])
    picked = picked or [record["title"] for record in corpus if record.get("title")]
    return picked[:QUESTIONS]


def settings_for(args: argparse.Namespace, home: Path, **server: Any) -> Any:
    options = {"home": home, "model_cache": args.model_cache, "embedding_model": MODEL}
    if args.batch_size:
        options["embedding_batch_size"] = args.batch_size
    return get_settings(**options, **server)


def ingest_locally(
    args: argparse.Namespace, corpus: list[dict], questions: list[str], home: Path
) -> tuple[dict, dict[str, list[float]]]:
    """The baseline run, and the vectors it made for every chunk and question."""
    from qa.embeddings import get_embedder
    from qa.ingestion import ingest
    from qa.workspace import Workspace

    settings = settings_for(args, home, embeddings="local")
    recording = Recording(get_embedder(settings))
    recording.embed_query(WARM_UP)  # the model loads (and is exported once) before the clock
    log(f"local: embedding {len(corpus)} articles in this process...")
    workspace = Workspace(settings)
    store = workspace.store(create=True)
    report = ingest([corpus_path(home.parent)], store, recording, settings.chunking)
    for question in questions:
        recording.embed_query(question)
    figures = figures_of(report, passages_of(workspace, questions))
    log(f"  {figures['chunks']} chunks, {figures['chunks_per_s']:.0f} chunks/s")
    return figures, recording.vectors


def ingest_through_server(
    args: argparse.Namespace,
    corpus: list[dict],
    questions: list[str],
    vectors: dict[str, list[float]],
    delay: float,
    concurrency: int,
    folder: Path,
) -> dict:
    """One ingest with QA_EMBEDDINGS=openai against a server answering from `vectors`."""
    from qa.workspace import Workspace

    home = folder / f"server-{delay:g}-{concurrency}"
    with serve_in_child(vectors, delay) as server:
        settings = settings_for(args, home, embeddings="openai", embedding_base_url=server.url,
                                embedding_concurrency=concurrency)  # fmt: skip
        workspace = Workspace(settings)
        # The client is made (and the SDK imported) before the clock, as the model is for local.
        workspace.embedder.embed_query(WARM_UP)
        log(f"server: {delay * 1000:g} ms/request, {concurrency} in flight...")
        report = workspace.ingest([corpus_path(folder)])
        # The warm-up's request came before, the questions' after: neither is the ingest's.
        batches = server.stats()["batch_sizes"][1:]
        figures = figures_of(report, passages_of(workspace, questions))
        in_flight = server.stats()["max_in_flight"]
    figures.update(requests=len(batches), largest_batch=max(batches), max_in_flight=in_flight,
                   concurrency=concurrency, delay_s=delay)  # fmt: skip
    log(f"  {figures['chunks_per_s']:.0f} chunks/s, {len(batches)} requests, "
        f"at most {in_flight} in flight")  # fmt: skip
    return figures


def chroma_alone(home: Path) -> dict:
    """Chroma's own upserts of what the local run stored (its chunks, vectors and article
    records, in qa's write batches) into new collections: what qa's ceiling cannot pass."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from qa.ingestion import EMBED_GROUP_CHUNKS

    def client(path: Path) -> Any:
        return chromadb.PersistentClient(str(path), ChromaSettings(anonymized_telemetry=False))

    stored, fresh = client(home / "chroma"), client(home.parent / "chroma-alone")
    log("Chroma alone: the local run's writes again, straight into Chroma...")
    seconds, chunks = 0.0, 0
    for name in ("default", "default__articles"):
        collection = stored.get_collection(name)
        rows = collection.get(include=["documents", "metadatas", "embeddings"])
        into = fresh.create_collection(name, metadata=collection.metadata,
                                       configuration={"hnsw": {"space": "cosine"}})  # fmt: skip
        started = time.perf_counter()
        for start in range(0, len(rows["ids"]), EMBED_GROUP_CHUNKS):
            part = slice(start, start + EMBED_GROUP_CHUNKS)
            columns = {key: rows[key][part] for key in ("ids", "embeddings", "documents")}
            into.upsert(**columns, metadatas=rows["metadatas"][part])
        seconds += time.perf_counter() - started
        chunks = chunks or len(rows["ids"])
    log(f"  {chunks / seconds:.0f} chunks/s")
    # Nothing is searched through these collections: the local run's passages stand for them.
    return {"chunks": chunks, "seconds": seconds, "chunks_per_s": chunks / seconds,
            "passages": None}  # fmt: skip


def figures_of(report: Any, passages: list[list[str]]) -> dict:
    return {"chunks": report.chunks_embedded, "seconds": report.seconds,
            "chunks_per_s": report.chunks_per_second, "passages": passages}  # fmt: skip


def passages_of(workspace: Any, questions: list[str]) -> list[list[str]]:
    """The chunk ids each question finds, best first."""
    return [[passage.chunk_id for passage in workspace.search(question)] for question in questions]


class Recording:
    """An embedder that keeps every vector it makes, by its text."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.name = embedder.name
        self.vectors: dict[str, list[float]] = {}

    def embed_documents(self, texts, progress=None):
        vectors = self.embedder.embed_documents(texts, progress)
        self.vectors.update(zip(texts, vectors, strict=True))
        return vectors

    def embed_query(self, text):
        self.vectors[text] = self.embedder.embed_query(text)
        return self.vectors[text]

    def warm_up(self) -> None:
        self.embedder.warm_up()


def summarise(
    args: argparse.Namespace,
    corpus: list[dict],
    questions: list[str],
    runs: list[tuple[str, dict]],
    local: dict,
    seconds: float,
) -> dict:
    from qa.evaluation.run import package_versions

    one = next((figures for _, figures in runs if figures.get("concurrency") == 1), None)
    rows = []
    for name, figures in runs:
        row = {key: value for key, value in figures.items() if key != "passages"}
        row["run"] = name
        row["retrieval_identical"] = (
            None if figures["passages"] is None else figures["passages"] == local["passages"]
        )
        row["vs_local"] = figures["chunks_per_s"] / local["chunks_per_s"]
        if one is not None and "concurrency" in figures:
            row["vs_concurrency_1"] = figures["chunks_per_s"] / one["chunks_per_s"]
        rows.append(row)
    return {
        "corpus": str(args.corpus),
        "articles": len(corpus),
        "chunks": local["chunks"],
        "questions_checked": len(questions),
        "batch_size": settings_for(args, Path("unused")).embeddings.batch_size,
        "runs": rows,
        "seconds": seconds,
        "versions": package_versions(),
    }


def print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(
        f"corpus: {summary['corpus']} (first {summary['articles']} articles, "
        f"{summary['chunks']:,} chunks); {summary['batch_size']} texts a request; retrieval "
        f"checked on {summary['questions_checked']} questions against the local run"
    )
    table = Table(title_justify="left")
    for column in ("run", "chunks/s", "× local", "× 1 in flight", "requests", "most in flight",
                   "retrieval identical"):  # fmt: skip
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in summary["runs"]:
        table.add_row(
            row["run"],
            f"{row['chunks_per_s']:,.0f}",
            f"{row['vs_local']:.1f}",
            f"{row['vs_concurrency_1']:.2f}" if "vs_concurrency_1" in row else "",
            str(row.get("requests", "")),
            str(row.get("max_in_flight", "")),
            {True: "yes", False: "NO", None: ""}[row["retrieval_identical"]],
        )
    console.print(table)
    console.print(f"whole run: {summary['seconds']:.0f} s")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
