"""Eval reports on disk, and what changed between two of them."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.evaluation.records import Report, Summary, metric_names
from qa.output_files import write_output

# Timings vary from run to run even when every answer is the same.
TIMING_METRICS = {"latency_mean", "latency_p95"}


@dataclass(frozen=True)
class MetricChange:
    name: str
    old: float | None
    new: float | None

    @property
    def change(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return round(self.new - self.old, 4)


@dataclass(frozen=True)
class Flip:
    """A question whose outcome (right, abstained, wrong) differs between two runs."""

    id: str
    question: str
    old: str
    new: str


@dataclass(frozen=True)
class Comparison:
    changes: list[MetricChange]
    flips: list[Flip]
    only_old: int
    only_new: int

    @property
    def changed(self) -> list[MetricChange]:
        return [c for c in self.changes if c.old != c.new]

    @property
    def scores_unchanged(self) -> bool:
        """No metric but latency moved and no question flipped: two runs of the same setup."""
        moved = [c for c in self.changed if c.name not in TIMING_METRICS]
        return not moved and not self.flips and not self.only_old and not self.only_new


@dataclass(frozen=True)
class SavedQuestion:
    id: str
    question: str
    outcome: str


@dataclass(frozen=True)
class SavedReport:
    """What a comparison needs of a report: the overall figures and each question's outcome."""

    overall: Summary
    questions: list[SavedQuestion]

    @classmethod
    def of(cls, report: Report) -> "SavedReport":
        return cls(
            report.metrics.overall,
            [
                SavedQuestion(r.question.id, r.question.question, r.scores.outcome)
                for r in report.results
            ],
        )

    @classmethod
    def from_json(cls, data: Any) -> "SavedReport | None":
        """None when `data` is not an eval report; metrics an older report lacks are None."""
        overall = data.get("metrics", {}).get("overall") if isinstance(data, dict) else None
        rows = data.get("questions") if isinstance(data, dict) else None
        if not isinstance(overall, dict) or not isinstance(rows, list):
            return None
        try:
            questions = [
                SavedQuestion(str(row["id"]), str(row["question"]), str(row["scores"]["outcome"]))
                for row in rows
            ]
        except (KeyError, TypeError):
            return None
        return cls(Summary.from_json(overall), questions)


def write_report(report: Report, path: Path) -> None:
    """Write the whole report to `path`, never half of one (see `qa.output_files`)."""
    write_output(path, json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n")


def load_report(path: Path) -> SavedReport:
    """An earlier `--out` report, checked enough to compare with."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"Cannot read report {path}: {error.strerror or error}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"Report {path} is not JSON: {error}.") from None
    saved = SavedReport.from_json(data)
    if saved is None:
        raise InputError(
            f"{path} is not a qa eval report.", "Use a file written by `qa eval --out`."
        )
    return saved


def compare_reports(old: SavedReport, new: SavedReport) -> Comparison:
    """Each overall metric before and after, and the questions whose outcome changed."""
    old_values, new_values = old.overall.to_json(), new.overall.to_json()
    changes = [MetricChange(name, old_values[name], new_values[name]) for name in metric_names()]
    old_rows = {row.id: row for row in old.questions}
    new_rows = {row.id: row for row in new.questions}
    flips = [
        Flip(id_, row.question, old_rows[id_].outcome, row.outcome)
        for id_, row in new_rows.items()
        if id_ in old_rows and old_rows[id_].outcome != row.outcome
    ]
    return Comparison(
        changes=changes,
        flips=flips,
        only_old=len(old_rows.keys() - new_rows.keys()),
        only_new=len(new_rows.keys() - old_rows.keys()),
    )


def comparison_to_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "changes": {
            c.name: {"old": c.old, "new": c.new, "change": c.change} for c in comparison.changes
        },
        "flips": [
            {"id": f.id, "question": f.question, "old": f.old, "new": f.new}
            for f in comparison.flips
        ],
        "only_in_old": comparison.only_old,
        "only_in_new": comparison.only_new,
    }
