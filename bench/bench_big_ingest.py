"""One `qa ingest` of a large .jsonl, its memory watched: qa's RSS must not grow with the input.

The input is the RealTime QA corpus repeated under new article ids until it is --megabytes
long. Embeddings come from the loopback server of tests/embedding_server.py answering at once
with the corpus's own vectors (made once by the bundled model and cached, as bench_scale does),
and the store is a `chroma run` server on 127.0.0.1: so what is watched is qa's own memory, not
a model's nor Chroma's vector index (which an embedded store keeps in the ingesting process, about
1.5 KB a chunk). The baseline, measured in the same run: the same ingest of one copy (4 MB).

Reported: input size, articles and chunks written, wall time, chunks/s, peak RSS (the kernel's
high-water mark, VmHWM) and RSS sampled every second, at each tenth of the run.

    python bench/bench_big_ingest.py --megabytes 1024
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_scale import free_port, load_corpus, serve_chroma, vectors_name  # noqa: E402

from tests.embedding_server import serve_in_child  # noqa: E402

REALTIMEQA = ROOT.parent / "shared" / "bench" / "realtimeqa"
MODEL = "all-MiniLM-L6-v2"


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-bench-big-", dir=args.tmp) as tmp:
        folder = Path(tmp)
        vectors = corpus_vectors(args)
        with serve_in_child(vectors, 0.0) as embeddings:
            results = {}
            for name, megabytes in (("baseline", 0), ("big", args.megabytes)):
                source = folder / f"{name}.jsonl"
                size = write_input(args.corpus, source, megabytes)
                log(f"{name}: {size / 2**20:,.0f} MB of articles; ingesting...")
                with serve_chroma(folder / f"{name}-chroma", free_port(),
                                  folder / f"{name}-chroma.log") as chroma:  # fmt: skip
                    results[name] = ingest_watched(source, folder / name, chroma.url,
                                                   embeddings.url, args.model_cache)  # fmt: skip
                results[name]["input_mb"] = size / 2**20
                source.unlink()
                log(f"  {describe(results[name])}")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, figures in results.items():
            print(f"{name:9} {describe(figures)}")
            print(f"{'':9} RSS at each tenth (MB): {figures['rss_by_tenth_mb']}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA / "corpus.jsonl")
    parser.add_argument("--megabytes", type=float, default=1024, help="size of the big input")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results",
                        help="where the corpus's vectors are cached")  # fmt: skip
    parser.add_argument("--model-cache", type=Path, default=ROOT / "bench" / "results" / "models")
    parser.add_argument("--tmp", type=Path, help="folder for the input and the stores")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def corpus_vectors(args: argparse.Namespace) -> dict[str, list[float]]:
    """The bundled model's vector of every chunk the corpus is cut into, by embedded text."""
    import numpy as np

    from qa.chunking import embedding_text
    from qa.embeddings import get_embedder
    from qa.settings import get_settings

    settings = get_settings(model_cache=args.model_cache)
    corpus = load_corpus(args.corpus, settings.chunking)
    texts = [
        embedding_text(settings.chunking, a, chunk) for a, chunks in corpus for chunk in chunks
    ]
    path = args.cache / vectors_name(args.corpus, MODEL, settings.chunking)
    if not path.is_file():
        log(f"embedding {len(texts)} chunks once (cached in {path})...")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.asarray(get_embedder(settings).embed_documents(texts), dtype=np.float32))
    vectors = np.load(path)
    if len(vectors) != len(texts):
        raise SystemExit(f"{path} holds {len(vectors)} vectors for {len(texts)} chunks.")
    return {text: vector.tolist() for text, vector in zip(texts, vectors, strict=True)}


def write_input(corpus: Path, path: Path, megabytes: float) -> int:
    """The corpus, then copies of it under new ids until `megabytes` (one copy at least)."""
    lines = corpus.read_text(encoding="utf-8").splitlines()
    size, copy = 0, 0
    with path.open("w", encoding="utf-8") as out:
        while copy == 0 or size < megabytes * 2**20:
            for line in lines:
                article = json.loads(line)
                if copy:
                    article["id"] = f"{article['id']}~copy{copy}"
                text = json.dumps(article, ensure_ascii=False) + "\n"
                out.write(text)
                size += len(text.encode("utf-8"))
            copy += 1
    return size


def ingest_watched(source: Path, home: Path, chroma_url: str, embeddings_url: str,
                   models: Path) -> dict:  # fmt: skip
    """`qa ingest source --json` in a new process, its RSS read every second."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QA_")}
    env |= {"QA_HOME": str(home), "QA_CHROMA_URL": chroma_url, "QA_EMBEDDINGS": "openai",
            "QA_EMBEDDING_BASE_URL": embeddings_url, "QA_EMBEDDING_MODEL": MODEL,
            "QA_MODEL_CACHE": str(models), "OPENAI_API_KEY": "unused",
            "ANONYMIZED_TELEMETRY": "False"}  # fmt: skip
    command = [sys.executable, "-m", "qa", "ingest", str(source), "--json"]
    samples: list[float] = []
    peaks: list[float] = []
    with (
        tempfile.TemporaryFile("w+") as output,
        (home.parent / f"{home.name}.log").open("w") as log_file,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=log_file, env=env)
        watching = (process.pid, samples, peaks)
        watcher = threading.Thread(target=watch_rss, args=watching, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            # Quoted here: the folder holding the log goes when the run ends.
            log_file.flush()
            tail = (home.parent / f"{home.name}.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"qa ingest failed after {wall:.0f} s:\n{tail}")
        output.seek(0)
        report = json.loads(output.read())
    chunks = int(report["chunks_embedded"])
    tenths = [samples[min(len(samples) - 1, len(samples) * i // 10)] for i in range(1, 11)]
    return {
        "articles": len(report.get("added", [])),
        "chunks": chunks,
        "seconds": wall,
        "chunks_per_s": chunks / wall,
        # The kernel's high-water mark of qa's own process: its rusage would also count the
        # pages it shared with this script between fork and exec.
        "peak_rss_mb": max(peaks, default=usage.ru_maxrss / 1024),
        "rss_by_tenth_mb": [round(mb) for mb in tenths] if samples else [],
    }


def watch_rss(pid: int, samples: list[float], peaks: list[float]) -> None:
    """Append the process's resident memory (MB) every second until it ends, and its
    high-water mark so far."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return
        if "VmRSS" not in fields:
            return
        samples.append(int(fields["VmRSS"].split()[0]) / 1024)
        peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
        if len(samples) % 300 == 0:
            # Logged as it goes, so a run stopped before its end still says what it reached.
            log(f"  {len(samples) // 60} min: RSS {samples[-1]:.0f} MB, peak {peaks[-1]:.0f} MB")
        time.sleep(1)


def describe(figures: dict) -> str:
    return (
        f"{figures['input_mb']:,.0f} MB in, {figures['articles']:,} articles, "
        f"{figures['chunks']:,} chunks in {figures['seconds']:,.0f} s "
        f"({figures['chunks_per_s']:.0f} chunks/s), peak RSS {figures['peak_rss_mb']:.0f} MB"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
