"""Measure what must not grow with the archive, on stores of growing size, each beside the smallest.

A store of any size is made from one corpus embedded once (the vectors are cached on disk):
copy r of each article gets the id `ID~rR`, a date r weeks earlier and its chunks' vectors with
a little noise, renormalised, and is written through qa's own write protocol (journal, chunks,
keyword rows, records), so the store and its keyword index are what `qa ingest` makes. The
sizes are built in turn, each by adding to the one before.

An archive grows over months, so by default each batch's records are stamped as written
CATCH_UP_STEP_MS after the one before, all before the run began: a reader then catches up (see
`qa.keyword_index.catch_up`) on what was written lately, as it would in use. With --bulk they
carry the time they are really written, as right after one `qa ingest` of the whole archive:
for the next few minutes (five through a server), a catch-up reads those records again.

At each size, in new processes:
- `qa ingest FILE` of one new article (a .txt file): wall time, CPU time and peak memory;
- a cold `qa ask QUESTION --json`: the same;
- warm retrieval: `Assistant.retrieve` over the test set's questions, each with its date as
  `as_of` (as `qa eval` asks them), after a warm-up: p50 and p95 and the process's peak memory;
- the size on disk of the Chroma folder and of the keyword index;
with the embedded store (QA_HOME) and with a `chroma run` server on loopback (QA_CHROMA_URL),
whose own memory is read too, and once more after a restart and one cold ask (what serving the
archive takes, without what writing it left behind). The cold figures are medians (peaks: the
largest) of COLD_RUNS runs, taken in turns. Every figure is shown beside the smallest size's, as
a ratio.

    python bench/bench_scale.py --sizes 10000,100000 --mode both
    python bench/bench_scale.py --sizes 10000,100000,1000000 --mode server --keep /data/scale
    python bench/bench_scale.py --sizes 10000,1000000 --mode server --keep /data/scale --reuse

Progress goes to stderr; a table (or, with --json, one JSON object) to stdout; the curves to
--plot. With --keep DIR, `DIR/SIZE/` is a QA_HOME that plain `qa` commands use as it is, and
`DIR/SIZE-server/` holds a server's data with a README.txt saying how to start it. With --reuse
as well, the stores a run left whole there are measured again as they are (a big one takes an
hour to build), and only the sizes missing are built.
"""

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REALTIMEQA = REPO.parent / "shared" / "bench" / "realtimeqa"
RESULTS = REPO / "bench" / "results"
MODES = ("embedded", "server")
# Chunks handed to one `Writer.write`: about what one ingest batch of many articles holds.
BATCH_CHUNKS = 2000
# Each copy of the corpus is dated this much earlier than the one before.
COPY_DAYS = 7
# Noise added to each vector component of a copy, before it is scaled to unit length again:
# enough that no two copies' vectors are equal, little enough that they stay near neighbours.
NOISE_SIGMA = 0.01
COLD_RUNS = 3
# Records of consecutive batches are stamped this far apart, just over the catch-up overlap.
CATCH_UP_STEP_MS = 5 * 60 * 1000 + 1000
QUERIES = 100
WARM_UP_QUESTION = "What happened this week?"
# One figure per row of the table: (key, label, digits).
FIGURES = (
    ("store_chunks", "chunks in the store", 0),
    ("write_rate", "build: chunks written/s", 0),
    ("ingest_s", "one-article qa ingest (s)", 2),
    ("ingest_cpu_s", "  CPU, user + system (s)", 2),
    ("ingest_peak_mb", "  peak RSS (MB)", 0),
    ("ask_s", "cold qa ask --json (s)", 2),
    ("ask_cpu_s", "  CPU, user + system (s)", 2),
    ("ask_peak_mb", "  peak RSS (MB)", 0),
    ("open_s", "warm: open the workspace (s)", 2),
    ("warm_p50_ms", "warm retrieve p50 (ms)", 1),
    ("warm_p95_ms", "warm retrieve p95 (ms)", 1),
    ("warm_peak_mb", "  peak RSS (MB)", 0),
    ("chroma_mb", "Chroma folder (MB)", 1),
    ("keyword_mb", "keyword index (MB)", 1),
    ("server_rss_mb", "chroma run RSS after all that (MB)", 0),
    ("server_peak_mb", "  peak RSS, writes included (MB)", 0),
    ("restart_ask_s", "cold qa ask, server just started (s)", 2),
    ("server_serving_mb", "  chroma run RSS after it (MB)", 0),
)
# Figures of the build that say where it got to, not what anything cost.
BOOKKEEPING = {"next_article", "chunks", "batches", "written", "seconds"}
# With --keep, what a size's build wrote, so --reuse can measure that store again unbuilt.
BUILT_FILE = "build.json"
# With --keep, how to start a kept server store (and, for --reuse, the port it was kept for).
SERVER_README = "README.txt"
VERSIONED_PACKAGES = ("qa-news", "chromadb", "onnxruntime", "numpy")
# The article each one-article ingest adds: made up, news-like, a few chunks long.
NEW_ARTICLE = """date {day}

Harbour town opens its new flood barrier after a decade of planning

The town of Kestrel Bay opened its tidal flood barrier on {day}, ten years after a winter storm
pushed the sea into the old harbour and flooded more than four hundred homes. The barrier, a
row of steel gates across the harbour mouth, closes when the tide is forecast to rise more than
a metre above its usual height.

Mayor Ines Halvorsen said the gates had been tested twice in the autumn storms and held both
times. "People here have slept badly every winter since the flood," she said at the opening.
"Tonight, for the first time, they should not have to."

The project cost 84 million euros, two thirds of it paid by the national government. Work began
four years ago after a long dispute over where the gates should stand; fishermen feared a
barrier at the outer breakwater would slow boats leaving at low tide, and the plan was changed
to place it inside the harbour.

Engineers expect the barrier to close about a dozen times a year at first, and more often as
sea levels rise. The town council has set aside money for a second stage, a raised wall along
the beach road, which it hopes to begin in two years.
"""


def main() -> None:
    args = parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](json.loads(args.spec))))
        return
    sizes = sorted({int(size) for size in args.sizes.split(",")})
    modes = MODES if args.mode == "both" else (args.mode,)
    if args.reuse and not args.keep:
        sys.exit("--reuse measures the stores an earlier run left in --keep DIR: give --keep.")
    if args.keep:
        refuse_kept_folders(args.keep, sizes, modes, args.reuse)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qa-bench-scale-", ignore_cleanup_errors=True) as tmp:
        bench = Bench(args, sizes, Path(tmp))
        prepared = bench.prepare()
        results = {mode: bench.run_mode(mode, sizes, prepared) for mode in modes}
    summary = summarise(args, prepared, sizes, results, time.perf_counter() - started)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_tables(summary)
    if args.plot:
        plot(summary, Path(args.plot))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=REALTIMEQA / "corpus.jsonl",
        help="JSONL of articles to make the stores from",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=REALTIMEQA / "questions.jsonl",
        help="test set whose questions (and dates) are asked",
    )
    parser.add_argument("--sizes", default="10000,100000", help="chunks, comma-separated")
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both")
    parser.add_argument("--queries", type=int, default=QUERIES, help="warm questions timed")
    parser.add_argument("--keep", type=Path, help="leave each size's store in DIR/SIZE/")
    parser.add_argument(
        "--cache",
        type=Path,
        default=RESULTS,
        help="where the corpus's vectors and the exported model are kept",
    )
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="stamp records with the time they are written, as one bulk ingest does",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the whole stores an earlier run left in --keep DIR again, unbuilt; "
        "build the sizes it did not reach",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.add_argument(
        "--plot",
        default=str(RESULTS / "scale.png"),
        help="PNG of the curves (needs matplotlib); empty for none",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    return parser.parse_args()


def refuse_kept_folders(keep: Path, sizes: list[int], modes: tuple[str, ...], reuse: bool) -> None:
    """Never build into a kept store of an earlier run: its figures would be of another store.
    With --reuse, whole stores are measured again; one whose build was cut short is refused."""
    taken = [
        folder
        for size in sizes
        for mode in modes
        if (folder := kept_folder(keep, mode, size)).exists()
        and any(folder.iterdir())
        and not (reuse and (folder / BUILT_FILE).is_file())
    ]
    if taken:
        sys.exit(
            f"{', '.join(map(str, taken))} already exist"
            + (" but were never built whole" if reuse else "")
            + "; remove them or choose another --keep."
        )


def kept_folder(keep: Path, mode: str, size: int) -> Path:
    return keep / (str(size) if mode == "embedded" else f"{size}-server")


@dataclass
class Layout:
    """Where one size's store lives: the QA_HOME, and for a server the folder it stores in."""

    folder: Path
    home: Path
    server_data: Path | None

    @classmethod
    def of(cls, folder: Path, mode: str) -> "Layout":
        if mode == "embedded":
            return cls(folder, folder, None)
        return cls(folder, folder / "home", folder / "chroma")

    def chroma_folder(self) -> Path:
        return self.server_data or self.home / "chroma"


@dataclass
class Server:
    """A `chroma run` on loopback."""

    process: subprocess.Popen
    url: str

    def memory_mb(self) -> tuple[float, float]:
        """Its resident memory now and at its peak (MB), from /proc."""
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        )
        return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


class Bench:
    """One run: the stores it grows, the processes it starts and what they measured."""

    def __init__(self, args: argparse.Namespace, sizes: list[int], tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.models = args.cache.resolve() / "models"
        # One port for every server of the run: the keyword index is kept per server URL.
        self.port = free_port()
        self.question = first_question(args.questions)
        self.first_stamp_ms = None if args.bulk else first_stamp_ms(sizes)

    def prepare(self) -> dict[str, Any]:
        log(f"Embedding {self.args.corpus} once (or reading its cached vectors)...")
        spec = {"corpus": str(self.args.corpus.resolve()), "cache": str(self.args.cache.resolve())}
        prepared = self.run_phase("prepare", spec, Layout.of(self.tmp / "prepare", "embedded"))
        log(
            f"  {prepared['articles']} articles, {prepared['chunks']} chunks: {prepared['vectors']}"
        )
        return prepared

    def run_mode(self, mode: str, sizes: list[int], prepared: dict) -> dict[int, dict]:
        """Grow one store through every size, measuring at each."""
        results: dict[int, dict] = {}
        built = {"next_article": 0, "chunks": 0, "batches": 0}
        previous: Layout | None = None
        for size in sizes:
            kept = (
                self.args.reuse and (kept_folder(self.args.keep, mode, size) / BUILT_FILE).is_file()
            )
            layout = self.layout_for(mode, size, None if kept else previous)
            link_models(self.models, layout.home / "models")
            with self.chroma(layout) as server:
                if kept:
                    build = self.kept_build(layout)
                else:
                    log(f"[{mode}] growing the store to {size:,} chunks...")
                    spec = {**prepared, **built, "size": size}
                    spec["first_stamp_ms"] = self.first_stamp_ms
                    build = self.run_phase("build", spec, layout, server)
                built = {key: build[key] for key in built}
                if self.args.keep:
                    (layout.folder / BUILT_FILE).write_text(json.dumps(build))
                log(
                    f"  {build['chunks']:,} chunks ({build['written']:,} new) in "
                    f"{build['seconds']:.1f} s, {build['write_rate']:.0f} chunks/s"
                )
                results[size] = build | self.measure(mode, size, layout, server)
            if server is not None:
                results[size] |= self.after_restart(layout)
            if self.args.keep and server is not None:
                write_server_readme(layout, self.port_of(layout), results[size]["chunks"])
            previous = layout
        return results

    def kept_build(self, layout: Layout) -> dict[str, Any]:
        """What the run that built this kept store wrote of it."""
        try:
            build = json.loads((layout.folder / BUILT_FILE).read_text())
        except (OSError, ValueError) as error:
            sys.exit(f"{layout.folder} holds no whole store of an earlier run ({error}).")
        log(f"  reusing {layout.folder}: {build['chunks']:,} chunks")
        return build

    def layout_for(self, mode: str, size: int, previous: Layout | None) -> Layout:
        """The next size's folder: the same one growing, or with --keep a copy of the last."""
        if not self.args.keep:
            return previous or Layout.of(self.tmp / mode, mode)
        layout = Layout.of(kept_folder(self.args.keep, mode, size).resolve(), mode)
        if previous is not None:
            log(f"  copying {previous.folder} to {layout.folder}...")
            shutil.copytree(
                previous.folder, layout.folder, ignore=shutil.ignore_patterns("models", BUILT_FILE)
            )
        return layout

    def measure(self, mode: str, size: int, layout: Layout, server: Server | None) -> dict:
        """The cold commands, warm retrieval, sizes on disk and the server's memory."""
        log(f"[{mode}] {COLD_RUNS} one-article ingests and cold asks, in turns...")
        cold = self.cold_runs(mode, size, layout, server)
        log(f"[{mode}] warm retrieval, {self.args.queries} questions...")
        spec = {"questions": str(self.args.questions), "queries": self.args.queries}
        warm = self.run_phase("warm", spec, layout, server)
        disk = {
            "chroma_mb": folder_mb(layout.chroma_folder()),
            "keyword_mb": folder_mb(Path(warm.pop("keyword_folder"))),
        }
        memory = {}
        if server:
            memory["server_rss_mb"], memory["server_peak_mb"] = server.memory_mb()
        figures = cold | warm | disk | memory
        log("  " + ", ".join(f"{key} {value:.5g}" for key, value in figures.items()))
        return figures

    def after_restart(self, layout: Layout) -> dict[str, float]:
        """A cold ask of a server just started, and the server's memory after it: what serving
        this archive takes, without what writing it left behind."""
        log("[server] restarted: one cold ask, then the server's memory...")
        with self.chroma(layout) as server:
            assert server is not None
            command = [qa_command(), "ask", self.question, "--json", "--llm", "extractive"]
            measured = run_measured(command, qa_env(layout, server), self.tmp / "ask.log")
            check_output("ask", measured.output)
            rss, _ = server.memory_mb()
        log(f"  ask {measured.wall:.2f} s, chroma run RSS {rss:.0f} MB")
        return {"restart_ask_s": measured.wall, "server_serving_mb": rss}

    def cold_runs(self, mode: str, size: int, layout: Layout, server: Server | None) -> dict:
        env = qa_env(layout, server)
        articles = self.tmp / "articles"
        articles.mkdir(exist_ok=True)
        runs: dict[str, list[Measured]] = {"ingest": [], "ask": []}
        for run in range(COLD_RUNS):
            # A new name each run: a kept store measured again must take it as a new article.
            article = articles / f"scale-{mode}-{size}-{run}-{time.time_ns()}.txt"
            article.write_text(NEW_ARTICLE.format(day=date.today().isoformat()))
            commands = {
                "ingest": [qa_command(), "ingest", str(article), "--json"],
                "ask": [qa_command(), "ask", self.question, "--json", "--llm", "extractive"],
            }
            for name, command in commands.items():
                measured = run_measured(command, env, self.tmp / f"{name}.log")
                check_output(name, measured.output)
                runs[name].append(measured)
        figures = {}
        for name, measured in runs.items():
            figures[f"{name}_s"] = statistics.median(m.wall for m in measured)
            figures[f"{name}_cpu_s"] = statistics.median(m.cpu for m in measured)
            figures[f"{name}_peak_mb"] = max(m.peak_mb for m in measured)
        return figures

    def port_of(self, layout: Layout) -> int:
        """The run's port; a kept server store's own, so its keyword index (kept per server
        URL) is the one qa finds, not one built anew from the whole store."""
        readme = layout.folder / SERVER_README
        if self.args.reuse and readme.is_file():
            found = re.search(r"--port (\d+)", readme.read_text())
            if found:
                return int(found[1])
        return self.port

    @contextmanager
    def chroma(self, layout: Layout) -> Iterator[Server | None]:
        """A server storing in the layout's server folder, for as long as the block runs."""
        if layout.server_data is None:
            yield None
            return
        layout.server_data.mkdir(parents=True, exist_ok=True)
        port = self.port_of(layout)
        with serve_chroma(layout.server_data, port, layout.folder / "server.log") as server:
            yield server

    def run_phase(
        self, name: str, spec: dict, layout: Layout, server: Server | None = None
    ) -> dict[str, Any]:
        """Run one phase of this script in a new process, with the layout's settings."""
        spec = {**spec, "home": str(layout.home), "models": str(self.models)}
        spec["chroma_url"] = server.url if server else None
        command = [sys.executable, __file__, "--phase", name, "--spec", json.dumps(spec)]
        done = subprocess.run(
            command, env=qa_env(layout, server), stdout=subprocess.PIPE, text=True, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])


# Phases: each runs in a process of its own, prints one JSON line and exits.


def phase_prepare(spec: dict) -> dict[str, Any]:
    """Export the embedding model once, then embed the corpus's chunks unless cached."""
    import numpy as np

    from qa.chunking import embedding_text
    from qa.embeddings import get_embedder

    settings = settings_of(spec)
    chunking = settings.chunking
    embedder = get_embedder(settings)
    embedder.embed_query(WARM_UP_QUESTION)  # exports the graph into the model cache once
    corpus = load_corpus(Path(spec["corpus"]), chunking)
    path = Path(spec["cache"]) / vectors_name(Path(spec["corpus"]), embedder.name, chunking)
    texts = [
        embedding_text(chunking, article, chunk) for article, chunks in corpus for chunk in chunks
    ]
    if not path.is_file():
        log(f"  embedding {len(texts)} chunks (once; cached in {path})...")
        started = time.perf_counter()
        vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
        log(f"  embedded in {time.perf_counter() - started:.0f} s")
        save_atomically(path, vectors)
    vectors = np.load(path, mmap_mode="r")
    if vectors.shape[0] != len(texts):
        raise SystemExit(f"{path} holds {vectors.shape[0]} vectors for {len(texts)} chunks.")
    return {
        "corpus": spec["corpus"],
        "vectors": str(path),
        "articles": len(corpus),
        "chunks": len(texts),
        "embedding_model": embedder.name,
        "chunking": chunking.as_metadata(),
    }


def phase_build(spec: dict) -> dict[str, Any]:
    """Add copies of the corpus's articles to the store until it holds `size` chunks."""
    import numpy as np

    from qa.embeddings import get_embedder
    from qa.keyword_index import KeywordIndex
    from qa.store import Store
    from qa.writer import Writer

    settings = settings_of(spec)
    chunking = settings.chunking
    copies = Copies(load_corpus(Path(spec["corpus"]), chunking), np.load(spec["vectors"]), chunking)
    store = Store.open(settings)
    started = time.perf_counter()
    position, chunks, batches = spec["next_article"], spec["chunks"], spec["batches"]
    with store.writing():
        store.prepare(get_embedder(settings).name, chunking)
        writer = Writer(store, KeywordIndex.open(store.cache_dir))
        writer.start()
        batch: list = []
        while chunks < spec["size"]:
            article_chunks = copies.article(position)
            batch.append(article_chunks)
            position, chunks = position + 1, chunks + len(article_chunks[1])
            if sum(len(item[1]) for item in batch) >= BATCH_CHUNKS or chunks >= spec["size"]:
                writer.write(batch, stamp(spec["first_stamp_ms"], batches))
                batch, batches = [], batches + 1
                log_building(chunks, spec, started)
        writer.finish()
    seconds = time.perf_counter() - started
    written = chunks - spec["chunks"]
    return {
        "next_article": position,
        "chunks": chunks,
        "batches": batches,
        "written": written,
        "seconds": seconds,
        "write_rate": written / seconds if seconds else 0.0,
        "build_peak_mb": peak_rss_mb(),
    } | first_query(store, copies, settings)


def stamp(first_stamp_ms: int | None, batch: int) -> int | None:
    """When batch number `batch` was written, in the archive's past; None: now."""
    return None if first_stamp_ms is None else first_stamp_ms + batch * CATCH_UP_STEP_MS


def first_stamp_ms(sizes: list[int]) -> int:
    """The time of the first batch: early enough that the last of the largest size's batches
    is stamped CATCH_UP_STEP_MS before the run began."""
    # Each size's last batch may be short, so there may be one more batch per size.
    batches = max(sizes) // BATCH_CHUNKS + len(sizes)
    return time.time_ns() // 1_000_000 - (batches + 1) * CATCH_UP_STEP_MS


def phase_warm(spec: dict) -> dict[str, Any]:
    """Retrieval in one process, as chat, eval and the MCP server run it: open once, then ask."""
    from qa.evaluation.metrics import percentile
    from qa.evaluation.testset import load_eval_set
    from qa.workspace import Workspace

    questions = load_eval_set(Path(spec["questions"])).questions[: spec["queries"]]
    started = time.perf_counter()
    assistant = Workspace(settings_of(spec)).assistant
    opened = time.perf_counter() - started
    # Lazy imports and the first search are not what a warm question costs.
    assistant.retrieve(WARM_UP_QUESTION, as_of=questions[0].date)
    times, passages = [], 0
    for question in questions:
        started = time.perf_counter()
        passages += len(assistant.retrieve(question.question, as_of=question.date))
        times.append((time.perf_counter() - started) * 1000)
    return {
        "open_s": opened,
        "warm_queries": len(times),
        "warm_mean_ms": statistics.fmean(times),
        "warm_p50_ms": percentile(times, 50),
        "warm_p95_ms": percentile(times, 95),
        "warm_passages": passages / len(times),
        "warm_peak_mb": peak_rss_mb(),
        "store_chunks": assistant.store.chunk_count(),
        "keyword_folder": str(assistant.store.cache_dir),
    }


PHASES = {"prepare": phase_prepare, "build": phase_build, "warm": phase_warm}


class Copies:
    """Article number n of the endless run of copies: copy n // len(corpus) of its article."""

    def __init__(self, corpus: list, vectors: Any, chunking: Any) -> None:
        import numpy as np

        self.corpus = corpus
        self.vectors = vectors
        self.chunking = chunking
        self.starts = np.cumsum([0] + [len(chunks) for _, chunks in corpus])
        self._copy: tuple[int, Any] | None = None

    def article(self, position: int) -> tuple[Any, list, Any]:
        """(article, chunks, vectors) of one copy, as a writer takes them."""
        import dataclasses

        from qa.chunking import chunk_article

        copy, index = divmod(position, len(self.corpus))
        original, _ = self.corpus[index]
        vectors = self.copy_vectors(copy)[self.starts[index] : self.starts[index + 1]]
        if copy == 0:
            return original, self.corpus[index][1], vectors
        article = dataclasses.replace(
            original, id=f"{original.id}~r{copy}", date=shifted(original.date, copy * COPY_DAYS)
        )
        # The same text, so the same chunks and offsets; the ids follow the new id and hash.
        return article, chunk_article(article, self.chunking), vectors

    def copy_vectors(self, copy: int) -> Any:
        """Every chunk vector of one copy: copy 0 as embedded, the others with their own noise."""
        import numpy as np

        if self._copy is None or self._copy[0] != copy:
            vectors = np.asarray(self.vectors, dtype=np.float32)
            if copy:
                noise = np.random.default_rng(copy).normal(0.0, NOISE_SIGMA, vectors.shape)
                vectors = vectors + noise.astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            self._copy = (copy, vectors)
        return self._copy[1]


def first_query(store: Any, copies: Copies, settings: Any) -> dict[str, float]:
    """A server loads its vector index at the first search: done here, not in a cold ask."""
    if not settings.store.chroma_url:
        return {}
    started = time.perf_counter()
    store.query(copies.copy_vectors(0)[0], 20)
    return {"server_first_query_s": time.perf_counter() - started}


def load_corpus(path: Path, chunking: Any) -> list[tuple[Any, list]]:
    """Every article of the corpus with its chunks, as qa loads and cuts them."""
    from qa.chunking import chunk_article
    from qa.loading import load_articles

    return [
        (article, chunk_article(article, chunking)) for article in load_articles([path]).articles
    ]


def vectors_name(corpus: Path, model: str, chunking: Any) -> str:
    """Named for the corpus's bytes and for the model and chunking that made the vectors."""
    corpus_sha = hashlib.sha256(corpus.read_bytes()).hexdigest()
    made_by = json.dumps([model, chunking.as_metadata()], sort_keys=True)
    return f"vectors-{corpus_sha[:16]}-{hashlib.sha256(made_by.encode()).hexdigest()[:8]}.npy"


def save_atomically(path: Path, vectors: Any) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.npy")
    np.save(partial, vectors)
    partial.replace(path)


def shifted(day: str | None, days: int) -> str | None:
    """`day` (YYYY-MM-DD) `days` earlier; an undated article stays undated."""
    if not day:
        return day
    return (date.fromisoformat(day[:10]) - timedelta(days=days)).isoformat()


def settings_of(spec: dict) -> Any:
    from qa.settings import get_settings

    return get_settings(
        home=Path(spec["home"]),
        chroma_url=spec["chroma_url"],
        model_cache=Path(spec["models"]),
        llm="extractive",
    )


def log_building(chunks: int, spec: dict, started: float) -> None:
    written = chunks - spec["chunks"]
    rate = written / (time.perf_counter() - started)
    log(f"    {chunks:,} / {spec['size']:,} chunks, {rate:.0f} chunks/s")


# Processes: servers, commands, their environment and what they leave on disk.


@contextmanager
def serve_chroma(data: Path, port: int, log_path: Path) -> Iterator[Server]:
    """`chroma run` storing in `data` on 127.0.0.1:`port`, until the block ends."""
    command = [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(data),
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with log_path.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for_port(process, port, log_path)
            yield Server(process, f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            process.wait(timeout=60)


def wait_for_port(
    process: subprocess.Popen, port: int, log_path: Path, seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if process.poll() is not None:
            raise RuntimeError(f"chroma run exited: {log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"chroma run was not listening on {port} within {seconds:.0f} s")
        time.sleep(0.3)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def qa_command() -> str:
    return str(Path(sys.executable).parent / "qa")


def qa_env(layout: Layout, server: Server | None) -> dict[str, str]:
    """The environment qa runs in: this layout's store, and none of the caller's QA_ choices of
    store or answerer."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"QA_HOME", "QA_CHROMA_URL", "QA_COLLECTION", "QA_MODEL_CACHE", "QA_LLM"}
    }
    env |= {"QA_HOME": str(layout.home), "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    if server:
        env["QA_CHROMA_URL"] = server.url
    return env


@dataclass(frozen=True)
class Measured:
    """One run of a command: wall and CPU seconds (user and system), peak RSS, stdout."""

    wall: float
    cpu: float
    peak_mb: float
    output: str


def run_measured(command: list[str], env: dict[str, str], log_path: Path) -> Measured:
    """Run `command` once in a new process, measured; stderr goes to `log_path`."""
    with tempfile.TemporaryFile("w+") as output, log_path.open("w") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=errors, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{command[1:2]} failed: {log_path.read_text()[-2000:]}")
        output.seek(0)
        # ru_maxrss is in KiB on Linux.
        cpu = usage.ru_utime + usage.ru_stime
        return Measured(wall, cpu, usage.ru_maxrss / 1024, output.read())


def check_output(name: str, output: str) -> None:
    """A run that did nothing would be timed as fast: the ingest must add, the ask must find."""
    reply = json.loads(output)
    if name == "ingest" and len(reply["added"]) != 1:
        raise RuntimeError(f"qa ingest added {reply['added']}, not one article")
    if name == "ask" and not reply["passages"]:
        raise RuntimeError("qa ask retrieved no passages")


def link_models(models: Path, into: Path) -> None:
    """The exported model in each home, as hard links where the disk allows: `qa` in a kept
    home starts without exporting it again."""
    if into.exists():
        return

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(models, into, copy_function=link)


def folder_mb(folder: Path) -> float:
    """Bytes of the files under `folder`, in MB."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def write_server_readme(layout: Layout, port: int, chunks: int) -> None:
    url = f"http://127.0.0.1:{port}"
    (layout.folder / SERVER_README).write_text(
        f"A Chroma server's store of {chunks:,} chunks, made by bench/bench_scale.py: the\n"
        "server's data in chroma/, qa's data (the keyword index) in home/.\n\n"
        "Start the server:\n\n"
        f"    ANONYMIZED_TELEMETRY=False chroma run --path {layout.server_data} \\\n"
        f"        --host 127.0.0.1 --port {port}\n\n"
        "then, in another shell:\n\n"
        f"    export QA_CHROMA_URL={url}\n"
        f"    export QA_HOME={layout.home}\n"
        '    qa ask "Who is Kurt Volker?"\n\n'
        f"The keyword index in home/ is kept for the server at exactly {url}:\n"
        "with any other URL, qa builds a new one, reading every chunk once.\n"
    )


def first_question(questions: Path) -> str:
    return json.loads(questions.read_text().splitlines()[0])["question"]


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Reporting


def summarise(
    args: argparse.Namespace, prepared: dict, sizes: list[int], results: dict, seconds: float
) -> dict[str, Any]:
    """Every figure of the run, with each size's ratio to the smallest."""
    from qa.evaluation.run import package_versions

    modes = {}
    for mode, by_size in results.items():
        smallest = by_size[sizes[0]]
        modes[mode] = {
            "sizes": {str(size): figures for size, figures in by_size.items()},
            "ratio_to_smallest": {
                str(size): {
                    key: value / smallest[key]
                    for key, value in figures.items()
                    if key not in BOOKKEEPING
                    and isinstance(value, int | float)
                    and smallest.get(key)
                }
                for size, figures in by_size.items()
            },
        }
    return {
        "corpus": prepared["corpus"],
        "corpus_articles": prepared["articles"],
        "corpus_chunks": prepared["chunks"],
        "embedding_model": prepared["embedding_model"],
        "chunking": prepared["chunking"],
        "questions": str(args.questions),
        "question": first_question(args.questions),
        "sizes": sizes,
        "cold_runs": COLD_RUNS,
        "noise_sigma": NOISE_SIGMA,
        "copy_days": COPY_DAYS,
        "batch_chunks": BATCH_CHUNKS,
        "records_stamped": "when written (bulk)" if args.bulk else "one batch per catch-up step",
        "seconds": seconds,
        "modes": modes,
        "versions": package_versions(VERSIONED_PACKAGES),
    }


def print_tables(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)
    sizes = summary["sizes"]
    console.print(
        f"corpus: {summary['corpus']} ({summary['corpus_articles']} articles, "
        f"{summary['corpus_chunks']:,} chunks), copied to each size; cold figures: median of "
        f"{summary['cold_runs']} runs (peaks: the largest); ratios: to {sizes[0]:,} chunks; "
        f"records stamped {summary['records_stamped']}"
    )
    for mode, figures in summary["modes"].items():
        table = Table(title=mode, title_justify="left")
        table.add_column("figure")
        for size in sizes:
            table.add_column(f"{size:,}", justify="right")
            if size != sizes[0]:
                table.add_column("ratio", justify="right")
        for key, label, digits in FIGURES:
            cells = row_cells(figures, sizes, key, digits)
            if cells:
                table.add_row(label, *cells)
        console.print(table)
    console.print(f"whole run: {summary['seconds'] / 60:.1f} min")


def row_cells(figures: dict, sizes: list[int], key: str, digits: int) -> list[str]:
    """One table row: each size's value, and after each but the first its ratio."""
    first = figures["sizes"][str(sizes[0])]
    if key not in first:
        return []
    cells = []
    for size in sizes:
        value = figures["sizes"][str(size)].get(key)
        cells.append("" if value is None else f"{value:,.{digits}f}")
        if size != sizes[0]:
            ratio = figures["ratio_to_smallest"][str(size)].get(key)
            cells.append("" if ratio is None else f"{ratio:.2f}x")
    return cells


# Curves: (key, label, scale) in the time panel, seconds after scaling; then the memory panel.
TIME_CURVES = (
    ("ingest_s", "one-article qa ingest", 1.0),
    ("ask_s", "cold qa ask", 1.0),
    ("warm_p95_ms", "warm retrieve p95", 0.001),
)
MEMORY_CURVES = (
    ("ingest_peak_mb", "qa ingest"),
    ("ask_peak_mb", "cold qa ask"),
    ("warm_peak_mb", "warm retrieval process"),
    ("server_serving_mb", "chroma run, restarted, after one ask"),
)
MODE_STYLES = {"embedded": "-", "server": "--"}


def plot(summary: dict[str, Any], path: Path) -> None:
    """Time and peak memory against chunks in the store: a colour a figure, a line style a mode."""
    try:
        import matplotlib
    except ImportError:
        log("No plot: matplotlib is not installed (pip install -e '.[bench]').")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    figure, (times, memory) = plt.subplots(1, 2, figsize=(12, 4.8))
    chunks: list[int] = []
    for mode, figures in summary["modes"].items():
        rows = [figures["sizes"][str(size)] for size in summary["sizes"]]
        chunks = [row["store_chunks"] for row in rows]
        for color, (key, label, scale) in enumerate(TIME_CURVES):
            values = [row[key] * scale for row in rows]
            times.plot(
                chunks, values, MODE_STYLES[mode], marker="o", color=f"C{color}", label=label
            )
        for color, (key, label) in enumerate(MEMORY_CURVES):
            if key in rows[0]:
                values = [row[key] for row in rows]
                memory.plot(chunks, values, MODE_STYLES[mode], marker="o", color=f"C{color}",
                            label=label)  # fmt: skip
    times.set(yscale="log", ylabel="seconds", title="time (cold: median of new processes)")
    memory.set(ylabel="MB", title="peak resident memory")
    memory.set_ylim(bottom=0)
    modes = [Line2D([], [], color="black", linestyle=MODE_STYLES[mode], label=mode)
             for mode in summary["modes"]]  # fmt: skip
    for axes in (times, memory):
        axes.set(xscale="log", xlabel="chunks in the store")
        axes.set_xticks(chunks, [short_count(size) for size in summary["sizes"]])
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.grid(True, which="both", alpha=0.3)
        handles, labels = axes.get_legend_handles_labels()
        named = dict(zip(labels, handles, strict=True))
        axes.legend([*named.values(), *modes], [*named, *summary["modes"]], fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    log(f"Curves written to {path}")


def short_count(count: int) -> str:
    """10,000 -> 10k, 1,000,000 -> 1M."""
    for size, suffix in ((1_000_000, "M"), (1000, "k")):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return str(count)


if __name__ == "__main__":
    main()
