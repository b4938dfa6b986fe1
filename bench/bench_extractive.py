"""The extractive answerer beside retrieval alone, and its sentence shortlist beside none.

For every question of a test set: retrieve (timed; the baseline), then answer from the same
passages twice, once as qa does (only the SHORTLIST sentences sharing most with the question,
within SHORTLIST_GAP of the best, are embedded) and once embedding every sentence. Prints mean
and p95 ms of each, how often the two choose the same sentences, and accuracy and truthfulness
of each, scored as `qa eval` scores them. CORPUS is ingested into a temporary store unless
--home holds it already.

    python bench/bench_extractive.py ../shared/bench/squad2/corpus.jsonl \
        ../shared/bench/squad2/questions.jsonl
"""

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from qa import extractive
from qa.answering import Assistant
from qa.citations import strip_markers
from qa.evaluation import metrics
from qa.evaluation.testset import load_eval_set
from qa.settings import get_settings
from qa.workspace import Workspace

DEFAULT_SHORTLIST, DEFAULT_GAP = extractive.SHORTLIST, extractive.SHORTLIST_GAP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--home", type=Path, help="a QA_HOME that already holds the corpus")
    parser.add_argument("--collection", default="bench")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as temporary:
        settings = get_settings(
            home=args.home or Path(temporary), collection=args.collection, llm="extractive"
        )
        assistant = open_assistant(settings, None if args.home else args.corpus)
        questions = load_eval_set(args.questions).questions[: args.limit]
        rows = [measure(assistant, question) for question in questions]
    report(rows)


def open_assistant(settings, corpus: Path | None) -> Assistant:
    """The assistant over `settings`' store, after ingesting `corpus` into it if given."""
    workspace = Workspace(settings)
    if corpus is not None:
        workspace.ingest([corpus])
    return workspace.assistant


def measure(assistant: Assistant, question) -> dict:
    started = time.perf_counter()
    passages = assistant.retrieve(question.question, None, question.date, None)
    retrieval = time.perf_counter() - started
    answers = {}
    for name, shortlist, gap in (
        ("shortlist", DEFAULT_SHORTLIST, DEFAULT_GAP),
        ("all", None, math.inf),
    ):
        extractive.SHORTLIST, extractive.SHORTLIST_GAP = shortlist, gap
        started = time.perf_counter()
        answering = assistant.answerer.answer(question.question, passages, as_of=question.date)
        answer = answering.answer()
        answers[name] = (answer, time.perf_counter() - started)
    extractive.SHORTLIST, extractive.SHORTLIST_GAP = DEFAULT_SHORTLIST, DEFAULT_GAP
    row = {"retrieval": retrieval}
    for name, (answer, seconds) in answers.items():
        said = "" if answer.abstained else strip_markers(answer.text)
        holds = metrics.contains_answer(said, question.answers)
        outcome = metrics.outcome(question.answerable, answer.abstained, holds)
        row[name] = {"seconds": seconds, "outcome": outcome, "text": answer.text}
    row["same"] = row["shortlist"]["text"] == row["all"]["text"]
    return row


def report(rows: list[dict]) -> None:
    def ms(values):
        ordered = sorted(values)
        p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        return f"{statistics.mean(values) * 1000:7.1f} mean {p95 * 1000:7.1f} p95"

    print(
        f"{len(rows)} questions; shortlist of {DEFAULT_SHORTLIST} sentences "
        f"within {DEFAULT_GAP} of the best"
    )
    print(f"  retrieval alone      {ms([r['retrieval'] for r in rows])} ms")
    for name in ("shortlist", "all"):
        outcomes = [r[name]["outcome"] for r in rows]
        accuracy = outcomes.count(metrics.RIGHT) / len(rows)
        truth = statistics.mean(metrics.truthfulness(o) for o in outcomes)
        print(
            f"  answer ({name:9}) {ms([r[name]['seconds'] for r in rows])} ms over retrieval;"
            f" accuracy {accuracy:.3f}, truthfulness {truth:+.3f}"
        )
    print(f"  same answer text     {sum(r['same'] for r in rows) / len(rows):.3f} of questions")


if __name__ == "__main__":
    sys.exit(main())
