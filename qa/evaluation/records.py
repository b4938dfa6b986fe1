"""What one eval run measured, as typed records; each turns itself into the report's JSON."""

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from qa.evaluation.testset import EvalQuestion
from qa.types import Answer

if TYPE_CHECKING:
    from qa.ingestion import IngestReport

REPORT_FORMAT = 1
# Figures in reports, enough to tell any two runs of a few thousand questions apart.
DECIMALS = 4


class Record:
    """A flat record whose JSON form is its fields."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scores(Record):
    """One question's scores; None where a score does not apply to the question."""

    outcome: str
    correct: bool
    contains_answer: bool
    exact_match: float
    f1: float
    truthfulness: int
    answer_hit: bool | None
    evidence_hit: bool | None
    evidence_rank: int | None
    citations_valid: int
    citation_markers: int
    choice: str | None
    choice_correct: bool | None
    latency_seconds: float


@dataclass(frozen=True)
class Summary(Record):
    """The averages over a group of questions; None where a metric does not apply."""

    questions: int
    accuracy: float | None = None
    exact_match: float | None = None
    f1: float | None = None
    answer_hit_at_k: float | None = None
    evidence_hit_at_k: float | None = None
    mrr: float | None = None
    abstention_rate: float | None = None
    abstention_precision: float | None = None
    abstention_recall: float | None = None
    abstention_f1: float | None = None
    truthfulness: float | None = None
    citation_validity: float | None = None
    choice_accuracy: float | None = None
    latency_mean: float | None = None
    latency_p95: float | None = None

    @classmethod
    def rounded(cls, **figures: int | float | None) -> "Summary":
        """A summary whose fractional figures are rounded for the report."""
        return cls(
            **{
                name: round(value, DECIMALS) if isinstance(value, float) else value
                for name, value in figures.items()
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Summary":
        """A summary read back from a report; metrics an older report lacks are None."""
        known = {name: data[name] for name in metric_names() if name in data}
        numbers = {
            name: value
            for name, value in known.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        return cls(**{"questions": 0, **numbers})


def metric_names() -> list[str]:
    return [f.name for f in fields(Summary)]


@dataclass(frozen=True)
class Metrics:
    """Figures over every question, and per group: `breakdowns[field][label]`."""

    overall: Summary
    breakdowns: dict[str, dict[str, Summary]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "breakdowns": {
                name: {label: summary.to_json() for label, summary in groups.items()}
                for name, groups in self.breakdowns.items()
            },
        }


@dataclass(frozen=True)
class CorpusInfo(Record):
    paths: list[str]
    articles: int
    sha256: str


@dataclass(frozen=True)
class RunSettings(Record):
    """Every setting that changes the figures, so a run can be reproduced and compared."""

    answerer: str
    model: str | None
    answerer_parameters: dict[str, Any]
    temperature: float
    embedding_model: str
    k: int
    retrieval: str
    chunk_size: int | None
    chunk_overlap: int | None
    chunk_header: bool | None
    collection: str | None
    store: str
    corpus: CorpusInfo
    versions: dict[str, str | None]


@dataclass(frozen=True)
class TestSetInfo(Record):
    path: str
    sha256: str
    questions: int
    evaluated: int


@dataclass(frozen=True)
class Timings(Record):
    ingest_seconds: float | None
    questions_seconds: float


@dataclass(frozen=True)
class QuestionResult:
    question: EvalQuestion
    answer: Answer
    latency: float
    scores: Scores

    def to_json(self) -> dict[str, Any]:
        question, answer = self.question, self.answer
        return {
            "id": question.id,
            "line": question.line,
            "question": question.question,
            "type": question.type,
            "answerable": question.answerable,
            "date": question.date,
            "answers": list(question.answers),
            "answer": answer.text,
            "abstained": answer.abstained,
            "unsupported": answer.unsupported,
            "citations": [citation.to_json() for citation in answer.citations],
            "retrieved": [
                {
                    "rank": p.rank,
                    "chunk_id": p.chunk_id,
                    "article_id": p.article_id,
                    "score": p.score,
                }
                for p in answer.passages
            ],
            "scores": self.scores.to_json(),
        }


@dataclass(frozen=True)
class Report:
    """Everything one eval run measured, with the settings that produced it."""

    test_set: TestSetInfo
    settings: RunSettings
    timings: Timings
    metrics: Metrics
    results: list[QuestionResult]
    ingest: "IngestReport | None" = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "test_set": self.test_set.to_json(),
            "settings": self.settings.to_json(),
            "ingest": self.ingest.to_json() if self.ingest else None,
            "timings": self.timings.to_json(),
            "metrics": self.metrics.to_json(),
            "questions": [result.to_json() for result in self.results],
        }
