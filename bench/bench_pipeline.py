"""Measure ingest throughput, query latency and peak memory, each beside a baseline.

Every phase runs in its own process so its peak memory (max RSS) is its own. Baselines are
measured in the same run on the same data:
- ingest: the embedding model alone encoding the same chunks (no loading, hashing or store
  writes), so the ratio shows what the rest of the pipeline costs;
- ask: retrieval alone (embed the question, search), timed in the same process in
  alternating passes, so the difference is what the extractive answerer adds;
- ingest, again: the plain LangChain pipeline (RecursiveCharacterTextSplitter 1000/200 into
  langchain-chroma with the same MiniLM through sentence-transformers), when the `bench`
  extra is installed;
- cold `qa ask` (median of 5 new processes): `qa --help`, the same process start and imports
  of the command-line layer;
- `qa eval` of the questions over the corpus (ingest included), for its peak memory.

    python bench/bench_pipeline.py --corpus ../shared/bench/squad2/corpus.jsonl \
        --questions ../shared/bench/squad2/questions.jsonl
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="file or folder of articles")
    parser.add_argument("--questions", type=Path, help="JSONL with a `question` field per line")
    parser.add_argument("--queries", type=int, default=50, help="questions to time")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as home:
        results = {name: run_phase(name, args, Path(home)) for name in PHASES}
    report(results, args)


def run_phase(name: str, args: argparse.Namespace, home: Path) -> dict:
    command = [sys.executable, __file__, "--phase", name, "--home", str(home)]
    command += ["--corpus", str(args.corpus), "--queries", str(args.queries)]
    if args.questions:
        command += ["--questions", str(args.questions)]
    if name in {"questions", "eval"} and not args.questions:
        return {}
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings_for(home: Path):
    from qa.settings import get_settings

    return get_settings(home=home, collection="bench", llm="extractive")


def phase_encode_only(args: argparse.Namespace) -> dict:
    from qa.chunking import chunk_article
    from qa.embeddings import load_local_model
    from qa.loading import load_articles

    settings = settings_for(args.home)
    chunking = settings.chunking
    texts = [
        chunk.text
        for article in load_articles([args.corpus]).articles
        for chunk in chunk_article(article, chunking)
    ]
    model = load_local_model(settings.embeddings.model_name)
    started = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True)
    seconds = time.perf_counter() - started
    return {"chunks": len(texts), "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def phase_export(args: argparse.Namespace) -> dict:
    """The one-time export of the model to ONNX (needs torch), kept out of the ingest figures."""
    from qa.embeddings import get_embedder

    started = time.perf_counter()
    get_embedder(settings_for(args.home)).embed_query("warm-up")
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def phase_ingest(args: argparse.Namespace) -> dict:
    from qa.workspace import Workspace

    workspace = Workspace(settings_for(args.home))
    workspace.embedder.embed_query("warm-up")  # loading the model is not ingest work
    first = workspace.ingest([args.corpus])
    again = workspace.ingest([args.corpus])
    return {
        "articles": len(first.added),
        "chunks": first.chunks_embedded,
        "seconds": first.seconds,
        "reingest_seconds": again.seconds,
        "reingest_chunks": again.chunks_embedded,
        "peak_rss_mb": peak_rss_mb(),
    }


# Passes over the questions, retrieval and ask in turn, so a machine that slows down or speeds
# up during the run weighs on the baseline and on qa alike.
PASSES = 2


def phase_questions(args: argparse.Namespace) -> dict:
    """Retrieval alone and the whole extractive ask, timed in one process in alternating passes.

    Every question misses the question-vector cache in both (it keeps fewer questions than a
    pass asks), so both pay for embedding the question.
    """
    from qa.evaluation.metrics import percentile
    from qa.workspace import Workspace

    assistant = Workspace(settings_for(args.home)).assistant
    questions = [
        json.loads(line)["question"]
        for line in args.questions.read_text().splitlines()
        if line.strip()
    ][: args.queries]

    def ask(question: str) -> object:
        return assistant.ask(question, stream=False).answer()

    ask(questions[0])  # warm-up: the first call pays for lazy imports
    times: dict[str, list[float]] = {"retrieve": [], "ask": []}
    for _ in range(PASSES):
        for name, call in (("retrieve", assistant.retrieve), ("ask", ask)):
            for question in questions:
                started = time.perf_counter()
                call(question)
                times[name].append((time.perf_counter() - started) * 1000)
    figures = {
        name: {
            "queries": len(values),
            "mean_ms": statistics.fmean(values),
            # The same nearest-rank p95 that `qa eval` reports.
            "p95_ms": percentile(values, 95),
        }
        for name, values in times.items()
    }
    return figures | {"peak_rss_mb": peak_rss_mb()}


COLD_RUNS = 5
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_QUESTION = "Who is Kurt Volker?"


def phase_cli_ask(args: argparse.Namespace) -> dict:
    """`qa ask` as a user runs it (process start, model load, retrieval, answer) on the corpus
    and on the seed article, and `qa --help`, each the median of COLD_RUNS new processes, taken
    in turns; with the peak memory of the cold asks."""
    question = "What is this about?"
    if args.questions:
        question = json.loads(args.questions.read_text().splitlines()[0])["question"]
    qa = str(Path(sys.executable).parent / "qa")
    seed_home = args.home / "seed"
    seeding = [qa, "ingest", str(SEEDS), "--home", str(seed_home)]
    subprocess.run(seeding, check=True, capture_output=True)
    extractive = ["--llm", "extractive"]
    commands = {
        "ask": [qa, "ask", question, "--home", str(args.home), "-c", "bench", *extractive],
        "seed_ask": [qa, "ask", SEED_QUESTION, "--home", str(seed_home), *extractive],
        "help": [qa, "--help"],
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, float] = dict.fromkeys(commands, 0.0)
    for _ in range(COLD_RUNS):
        for name, command in commands.items():
            wall, peak_mb = run_measured(command)
            seconds[name].append(wall)
            peaks[name] = max(peaks[name], peak_mb)
    medians = {f"{name}_seconds": statistics.median(values) for name, values in seconds.items()}
    return {**medians, **{f"{name}_peak_mb": peak for name, peak in peaks.items()}}


def run_measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of `command` in a new process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return wall, usage.ru_maxrss / 1024


def phase_plain_ingest(args: argparse.Namespace) -> dict:
    """The plain LangChain pipeline's ingest of the same corpus (see bench_retrieval.py)."""
    try:
        from bench_retrieval import open_plain
    except ImportError as error:
        return {"skipped": f"{error.name} is not installed (pip install -e '.[bench]')"}
    plain = open_plain(args.corpus, args.home / "plain")
    return {"seconds": plain.ingest_seconds, "chunks": plain.chunks, "peak_rss_mb": peak_rss_mb()}


def phase_eval(args: argparse.Namespace) -> dict:
    """`qa eval` of the questions over the corpus, in this process, for its peak memory."""
    from qa.cli import app

    started = time.perf_counter()
    command = ["eval", str(args.questions), "--corpus", str(args.corpus), "--home", str(args.home)]
    try:
        app([*command, "--llm", "extractive", "--json"])
    except SystemExit as end:
        if end.code not in (0, None):
            raise
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


PHASES = {
    "encode_only": phase_encode_only,
    "plain_ingest": phase_plain_ingest,
    "export": phase_export,
    "ingest": phase_ingest,
    "questions": phase_questions,
    "cli_ask": phase_cli_ask,
    "eval": phase_eval,
}


def report(results: dict, args: argparse.Namespace) -> None:
    encode, ingest = results["encode_only"], results["ingest"]
    encode_rate = encode["chunks"] / encode["seconds"]
    ingest_rate = ingest["chunks"] / ingest["seconds"]
    print(f"corpus: {args.corpus} ({ingest['articles']} articles, {ingest['chunks']} chunks)")
    print(
        f"baseline encode only : {encode_rate:8.1f} chunks/s  peak {encode['peak_rss_mb']:.0f} MB"
        " (sentence-transformers, torch)"
    )
    print(
        f"qa ingest            : {ingest_rate:8.1f} chunks/s  peak {ingest['peak_rss_mb']:.0f} MB"
        f"  ({ingest_rate / encode_rate:.2f}x baseline)"
    )
    print(
        f"re-ingest unchanged  : {ingest['reingest_seconds']:8.2f} s, "
        f"{ingest['reingest_chunks']} chunks embedded"
    )
    if results["questions"]:
        retrieve, ask = results["questions"]["retrieve"], results["questions"]["ask"]
        print(
            f"baseline retrieve    : {retrieve['mean_ms']:8.1f} ms/query mean, "
            f"p95 {retrieve['p95_ms']:.1f} ms ({retrieve['queries']} queries)"
        )
        print(
            f"qa ask (extractive)  : {ask['mean_ms']:8.1f} ms/query mean, p95 {ask['p95_ms']:.1f}"
            f" ms, peak {results['questions']['peak_rss_mb']:.0f} MB; the answer adds "
            f"{ask['mean_ms'] - retrieve['mean_ms']:.1f} ms "
            f"({ask['mean_ms'] / retrieve['mean_ms']:.2f}x baseline)"
        )
    plain = results["plain_ingest"]
    if "seconds" in plain:
        print(
            f"plain LangChain ingest: {plain['chunks'] / plain['seconds']:7.1f} chunks/s, "
            f"{plain['seconds']:.1f} s, peak {plain['peak_rss_mb']:.0f} MB; qa took "
            f"{ingest['seconds'] / plain['seconds']:.2f}x its time ({ingest['seconds']:.1f} s)"
        )
    else:
        print(f"plain LangChain ingest: skipped, {plain.get('skipped')}")
    cold = results["cli_ask"]
    print(
        f"qa ask, cold, corpus : {cold['ask_seconds']:8.2f} s wall, median of {COLD_RUNS}, "
        f"peak {cold['ask_peak_mb']:.0f} MB"
    )
    print(
        f"qa ask, cold, seed   : {cold['seed_ask_seconds']:8.2f} s wall, median of {COLD_RUNS}, "
        f"peak {cold['seed_ask_peak_mb']:.0f} MB"
    )
    print(f"baseline qa --help   : {cold['help_seconds']:8.2f} s wall, median of {COLD_RUNS}")
    if results["eval"]:
        evaluation = results["eval"]
        print(
            f"qa eval (ingest + questions): {evaluation['seconds']:.1f} s, "
            f"peak {evaluation['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
