"""Score the assistant on a test set: the same path a user's `qa ask` takes, then metrics."""

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from qa.answering import Assistant
from qa.citations import MARKER_GROUP, strip_markers
from qa.errors import InputError
from qa.evaluation import metrics
from qa.evaluation.records import (
    CorpusInfo,
    Metrics,
    QuestionResult,
    Report,
    RunSettings,
    Scores,
    Summary,
    TestSetInfo,
    Timings,
)
from qa.evaluation.testset import EvalQuestion, EvalSet
from qa.ingestion import IngestReport
from qa.masking import mask_secrets
from qa.settings import Settings, StoreSettings
from qa.types import Answer, ProgressCallback
from qa.workspace import Workspace

TEMPORARY_COLLECTION = "eval"
VERSIONED_PACKAGES = ("qa-news", "chromadb", "sentence-transformers")

ProgressFactory = Callable[[str], AbstractContextManager[ProgressCallback | None]]


def run_eval(
    eval_set: EvalSet,
    settings: Settings,
    *,
    questions: Sequence[EvalQuestion] | None = None,
    corpus: Sequence[Path] = (),
    keep_collection: bool = False,
    by: Sequence[str] = (),
    progress: ProgressFactory | None = None,
) -> Report:
    """Ingest `corpus` (into a temporary store unless `keep_collection`), ask every question.

    Each question goes through `Assistant.ask`, the call behind `qa ask`, with its `date`
    as `as_of`.
    """
    questions = list(eval_set.questions if questions is None else questions)
    check_breakdown_fields(questions, by)
    progress = progress or (lambda _label: nullcontext(None))
    with collection_for(settings, bool(corpus), keep_collection) as target:
        workspace = Workspace(target)
        ingest_report = None
        if corpus:
            with progress("Embedding") as on_progress:
                ingest_report = ingest_corpus(workspace, corpus, eval_set.path, on_progress)
        assistant = workspace.assistant
        started = time.perf_counter()
        with progress("Answering") as on_progress:
            results = answer_all(assistant, questions, on_progress)
        questions_seconds = time.perf_counter() - started
        temporary = bool(corpus) and not keep_collection
        run_settings = describe_run(assistant, corpus, temporary)
    return Report(
        test_set=TestSetInfo(
            path=str(eval_set.path),
            sha256=eval_set.sha256,
            questions=len(eval_set.questions),
            evaluated=len(questions),
        ),
        settings=run_settings,
        timings=Timings(
            ingest_seconds=round(ingest_report.seconds, 3) if ingest_report else None,
            questions_seconds=round(questions_seconds, 3),
        ),
        metrics=summarise_all(results, by),
        results=results,
        ingest=ingest_report,
    )


def answer_all(
    assistant: Assistant, questions: Sequence[EvalQuestion], progress: ProgressCallback | None
) -> list[QuestionResult]:
    # Load the embedding model before the clock starts for the first question.
    assistant.embedder.embed_query("warm-up")
    results = []
    for done, question in enumerate(questions):
        if progress:
            progress(done, len(questions))
        started = time.perf_counter()
        answer = assistant.ask(question.question, as_of=question.date, stream=False).answer()
        latency = time.perf_counter() - started
        results.append(QuestionResult(question, answer, latency, score(question, answer, latency)))
    if progress:
        progress(len(questions), len(questions))
    return results


def score(question: EvalQuestion, answer: Answer, latency: float) -> Scores:
    """Every per-question score the report and the averages use."""
    said = "" if answer.abstained else strip_markers(answer.text)
    holds = metrics.contains_answer(said, question.answers)
    result = metrics.outcome(question.answerable, answer.abstained, holds)
    passages = [
        (metrics.credited_article(p.article_ids, question.article_ids), p.text)
        for p in answer.passages
    ]
    relevant = bool(question.evidence or question.article_ids)
    rank = metrics.first_relevant_rank(passages, question.evidence, question.article_ids)
    valid, markers = citation_counts(answer)
    choice = metrics.picked_choice(said, question.choices) if question.choices else None
    return Scores(
        outcome=result,
        correct=result == metrics.RIGHT,
        contains_answer=holds,
        exact_match=metrics.exact_match(said, question.answers),
        f1=round(metrics.token_f1(said, question.answers), 4),
        truthfulness=metrics.truthfulness(result),
        answer_hit=(
            any(metrics.contains_answer(text, question.answers) for _, text in passages)
            if question.answers
            else None
        ),
        evidence_hit=rank is not None if relevant else None,
        evidence_rank=rank,
        citations_valid=valid,
        citation_markers=markers,
        choice=choice,
        choice_correct=(choice in question.answers) if question.choices else None,
        latency_seconds=round(latency, 4),
    )


def citation_counts(answer: Answer) -> tuple[int, int]:
    """Markers in the answer that quote a retrieved passage verbatim, and all markers."""
    retrieved = {passage.chunk_id: passage for passage in answer.passages}
    cited = {citation.marker: citation for citation in answer.citations}
    used = {int(n) for group in MARKER_GROUP.findall(answer.text) for n in group.split(",")}
    valid = 0
    for marker in used:
        citation = cited.get(marker)
        passage = retrieved.get(citation.passage.chunk_id) if citation else None
        if citation and passage:
            quote = citation.quote
            valid += metrics.quote_is_verbatim(
                quote, citation.start, citation.end, passage.text, passage.start
            )
    return valid, len(used) + len(answer.dropped_markers)


def summarise(results: Sequence[QuestionResult]) -> Summary:
    """The averages over a group of questions; None where a metric does not apply."""
    scores = [r.scores for r in results]
    abstention = metrics.abstention_scores(
        (r.question.answerable, r.answer.abstained) for r in results
    )
    latencies = [s.latency_seconds for s in scores]
    markers = sum(s.citation_markers for s in scores)
    return Summary.rounded(
        questions=len(results),
        accuracy=metrics.mean(s.correct for s in scores),
        exact_match=metrics.mean(s.exact_match for s in scores),
        f1=metrics.mean(s.f1 for s in scores),
        answer_hit_at_k=mean_where_applies(s.answer_hit for s in scores),
        evidence_hit_at_k=mean_where_applies(s.evidence_hit for s in scores),
        mrr=metrics.mean(
            1 / s.evidence_rank if s.evidence_rank else 0.0
            for s in scores
            if s.evidence_hit is not None
        ),
        abstention_rate=metrics.mean(r.answer.abstained for r in results),
        abstention_precision=abstention["precision"],
        abstention_recall=abstention["recall"],
        abstention_f1=abstention["f1"],
        truthfulness=metrics.mean(s.truthfulness for s in scores),
        citation_validity=sum(s.citations_valid for s in scores) / markers if markers else None,
        choice_accuracy=mean_where_applies(s.choice_correct for s in scores),
        latency_mean=metrics.mean(latencies),
        latency_p95=metrics.percentile(latencies, 95),
    )


def mean_where_applies(values: Iterable[bool | None]) -> float | None:
    """The mean over the questions a score applies to (not None)."""
    return metrics.mean(value for value in values if value is not None)


def summarise_all(results: Sequence[QuestionResult], by: Sequence[str]) -> Metrics:
    """Overall figures, and the same figures per answerable/unanswerable, type and `by` field."""
    groupings: dict[str, Callable[[EvalQuestion], str]] = {
        "answerable": lambda q: "answerable" if q.answerable else "unanswerable",
    }
    if any(r.question.type for r in results):
        groupings["type"] = lambda q: q.type or "untyped"
    for name in by:
        groupings[name] = lambda q, name=name: q.labels.get(name, "(none)")
    breakdowns = {}
    for name, label_of in groupings.items():
        groups: dict[str, list[QuestionResult]] = {}
        for result in results:
            groups.setdefault(label_of(result.question), []).append(result)
        breakdowns[name] = {label: summarise(group) for label, group in groups.items()}
    return Metrics(overall=summarise(results), breakdowns=breakdowns)


def check_breakdown_fields(questions: Sequence[EvalQuestion], by: Sequence[str]) -> None:
    for name in by:
        if not any(name in q.labels for q in questions):
            raise InputError(
                f"No question in the test set has a field {name!r} to break results down by.",
                "Give --by a field that holds a string, number or true/false.",
            )


@contextmanager
def collection_for(settings: Settings, has_corpus: bool, keep: bool) -> Iterator[Settings]:
    """Settings pointing at the collection to evaluate.

    With a corpus and no named collection: a fresh embedded store in a temporary directory,
    removed afterwards, so the user's store is never touched.
    """
    if not has_corpus or keep:
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="qa-eval-", ignore_cleanup_errors=True) as home:
        # The model's graph stays where it is: no need to build it again.
        store = StoreSettings(home=Path(home), chroma_url=None, collection=TEMPORARY_COLLECTION)
        embeddings = settings.embeddings.model_copy(
            update={"model_cache": settings.model_cache_dir}
        )
        yield settings.model_copy(
            update={
                "store": store,
                "embeddings": embeddings,
            }
        )


def ingest_corpus(
    workspace: Workspace,
    corpus: Sequence[Path],
    eval_path: Path,
    progress: ProgressCallback | None,
) -> IngestReport:
    """Ingest the corpus files; the test set itself is never taken for an article."""
    from qa.loading import iter_article_files

    test_set = eval_path.resolve()
    files = [path for path in iter_article_files(corpus) if path.resolve() != test_set]
    if not files:
        raise InputError(f"No article files in {', '.join(map(str, corpus))}.")
    return workspace.ingest(files, progress)


def describe_run(assistant: Assistant, corpus: Sequence[Path], temporary: bool) -> RunSettings:
    """Every setting that changes the figures, so a run can be reproduced and compared."""
    settings = assistant.settings
    recorded = assistant.store.recorded_settings()
    hashes = assistant.store.article_hashes()
    corpus_hash = hashlib.sha256(json.dumps(sorted(hashes.items())).encode()).hexdigest()
    return RunSettings(
        answerer=assistant.answerer.name,
        model=assistant.answerer.model,
        answerer_parameters=assistant.answerer.parameters,
        temperature=settings.llm.temperature,
        embedding_model=assistant.embedder.name,
        k=settings.k,
        retrieval=settings.retrieval,
        chunk_size=recorded.get("chunk_size"),
        chunk_overlap=recorded.get("chunk_overlap"),
        chunk_header=recorded.get("chunk_header"),
        collection=None if temporary else settings.store.collection,
        store="temporary" if temporary else mask_secrets(settings.store.chroma_url or "embedded"),
        corpus=CorpusInfo(
            paths=[str(path) for path in corpus], articles=len(hashes), sha256=corpus_hash
        ),
        versions=package_versions(),
    )


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Python's version and each named package's installed version (None when missing)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
