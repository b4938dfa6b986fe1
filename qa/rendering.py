"""Everything qa shows people, with Rich; records give their own JSON (`to_json()`)."""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table

from qa.errors import QAError
from qa.ingestion import IngestReport, ProgressCallback
from qa.masking import mask_secrets
from qa.store import ArticleRecord
from qa.terminal_text import terminal_safe
from qa.types import Answer, Citation, Passage

if TYPE_CHECKING:
    # Only `qa eval` renders these; `qa ask` should not import the eval modules to start.
    from qa.evaluation.records import Report
    from qa.evaluation.reports import Comparison

QUOTE_PREVIEW_CHARS = 300
# Skips of one reason beyond this many are counted, not listed (all are in --json).
SKIPS_LISTED_PER_REASON = 3
REASON_DETAILS = re.compile(r"'[^']*'|\"[^\"]*\"|\([^)]*\)|\d+")


class SafeConsole(Console):
    """A console that never passes on a control character from the text it shows.

    Everything printed (answers, titles, passages, errors, tables) is made of segments; Rich's
    own styling is added after this, so colours still work.
    """

    def _render_buffer(self, buffer) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(terminal_safe(segment.text), segment.style)
            for segment in buffer
        )


def stdout_console() -> Console:
    return SafeConsole(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return SafeConsole(stderr=True, highlight=False)


def render_error(console: Console, message: str) -> None:
    # One line whatever the width: a script reading the first line gets the whole message.
    # Messages quote URLs and server replies, which can carry credentials.
    console.print(f"[bold red]Error:[/] {escape(mask_secrets(message))}", soft_wrap=True)


@contextmanager
def own_line_for_errors(console: Console, streamed: list[str]) -> Iterator[None]:
    """If the block fails after part of an answer was streamed, end that line first, so the
    error is not glued onto the partial answer."""
    try:
        yield
    except QAError:
        if streamed:
            console.print()
        raise


def token_printer(
    console: Console, streamed: list[str], before_first: Callable[[], None] | None = None
) -> Callable[[str], None]:
    """Prints each piece of a streamed answer as it comes, keeping them in `streamed`."""

    def on_token(token: str) -> None:
        if before_first and not streamed:
            before_first()
        streamed.append(token)
        console.print(token, end="", markup=False, highlight=False)

    return on_token


def render_answer_text(console: Console, answer: Answer) -> None:
    style = "yellow" if answer.abstained or answer.unsupported else ""
    console.print(escape(answer.text), style=style)


def render_citations(console: Console, answer: Answer) -> None:
    """The numbered sources under an answer, each with its verbatim quote and offsets."""
    if answer.unsupported:
        console.print("[yellow]No valid citation: this answer is not supported by the passages.[/]")
    if answer.dropped_markers:
        dropped = ", ".join(f"[{n}]" for n in answer.dropped_markers)
        console.print(f"[dim]Removed markers not backed by a passage: {escape(dropped)}[/]")
    if answer.citations:
        console.print()
    for citation in answer.citations:
        console.print(citation_line(citation))
        console.print(f"    [italic]“{escape(preview(citation.quote))}”[/]")
        if citation.passage.also_in:
            console.print(f"    [dim]also in {escape(copies_line(citation.passage))}[/]")
    # Said even without citations: which model wrote an unsupported answer matters most.
    console.print(f"\n[dim]answered by {escape(byline(answer.answerer, answer.model))}[/]")


def byline(answerer: str, model: str | None) -> str:
    """Who answered: `openai (gpt-4o-mini)`, or just `extractive`."""
    return answerer + (f" ({model})" if model else "")


def citation_line(citation: Citation) -> str:
    passage = citation.passage
    details = " · ".join(
        escape(part)
        for part in (
            passage.date,
            passage.source,
            f"{passage.article_id}:{citation.start}-{citation.end}",
        )
        if part
    )
    return f"[bold cyan][{citation.marker}][/] [bold]{escape(passage.title)}[/] [dim]{details}[/]"


def copies_line(passage: Passage) -> str:
    """The other articles carrying the same story: `id (date), …`."""
    return ", ".join(f"{copy.article_id} ({copy.date or 'undated'})" for copy in passage.also_in)


def render_answer(console: Console, answer: Answer) -> None:
    render_answer_text(console, answer)
    render_citations(console, answer)


def render_passages(console: Console, passages: list[Passage]) -> None:
    for passage in passages:
        header = f"[bold]#{passage.rank}[/] {escape(passage.title)}"
        meta = f"{passage.date or 'undated'} · score {passage.score:.3f} · {passage.chunk_id}"
        console.print(f"{header} [dim]{escape(meta)}[/]")
        console.print(escape(passage.text), style="dim")
        console.print()


def render_ingest_report(console: Console, report: IngestReport) -> None:
    console.print(
        f"[green]{len(report.added)} added[/], [cyan]{len(report.updated)} updated[/], "
        f"{len(report.unchanged)} unchanged, "
        f"[yellow]{len(report.skipped)} skipped[/] "
        f"[dim]({report.chunks_embedded} chunks embedded in {report.seconds:.1f}s)[/]"
    )
    render_skipped(console, report.skipped)
    for note in report.notes:
        console.print(f"  [yellow]note[/] {escape(note.location)}: {escape(note.message)}")


def render_skipped(console: Console, skipped: list) -> None:
    """Skips grouped by kind of reason: the first few of each, then how many more."""
    by_kind: dict[str, list] = {}
    for item in skipped:
        by_kind.setdefault(reason_kind(item.reason), []).append(item)
    for kind, items in by_kind.items():
        for item in items[:SKIPS_LISTED_PER_REASON]:
            console.print(f"  [yellow]skipped[/] {escape(item.location)}: {escape(item.reason)}")
        more = len(items) - SKIPS_LISTED_PER_REASON
        if more > 0:
            console.print(
                f"  [yellow]skipped[/] {more} more: {escape(kind)} [dim](all with --json)[/]"
            )


def reason_kind(reason: str) -> str:
    """A skip reason without what differs between items (ids, line numbers, parentheses)."""
    return " ".join(REASON_DETAILS.sub(" ", reason).split())


def render_sources(console: Console, records: list[ArticleRecord], collection: str) -> None:
    table = Table(title=f"{len(records)} articles in {collection!r}", title_justify="left")
    for column in ("id", "title", "date", "chunks"):
        table.add_column(column, justify="right" if column == "chunks" else "left")
    for record in records:
        table.add_row(
            escape(record.id), escape(record.title), record.date or "", str(record.chunks)
        )
    console.print(table)


@contextmanager
def progress_bar(console: Console, description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on a terminal; nothing when output goes to a file or pipe."""
    with progress_bars(console, description) as (update,):
        yield update


@contextmanager
def progress_bars(
    console: Console, *descriptions: str
) -> Iterator[tuple[ProgressCallback | None, ...]]:
    """One bar per step, each shown from its first update; none off a terminal."""
    if not console.is_terminal:
        yield tuple(None for _ in descriptions)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[bold]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:

        def bar(description: str) -> ProgressCallback:
            task = progress.add_task(description, total=None, visible=False)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total, visible=True)

            return update

        yield tuple(bar(description) for description in descriptions)


def preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_PREVIEW_CHARS else text[: QUOTE_PREVIEW_CHARS - 1] + "…"


def render_chat_welcome(console: Console, collection: str, answerer: str) -> None:
    console.print(
        f"[bold]qa chat[/] · collection [bold]{escape(collection)}[/] · "
        f"answered by {escape(answerer)}"
    )
    console.print(
        "[dim]Ask a question; follow-ups can say he, it, there… "
        "/help lists commands, Ctrl-D leaves.[/]"
    )


def render_searched(console: Console, searched: str, answering: str) -> None:
    """What a follow-up was searched with, and the standalone question answered, dimmed."""
    console.print(f"[dim]↳ searched: {escape(searched)}[/]")
    console.print(f"[dim]↳ answering: {escape(answering)}[/]")


def render_chat_answer(console: Console, answer: Answer, streamed: str) -> None:
    """A chat turn's answer (after `streamed`, the text already shown), citations, a blank line."""
    if streamed:
        render_after_stream(console, answer, streamed)
    else:
        render_answer(console, answer)
    console.print()


def render_notice(console: Console, text: str, warning: bool = False) -> None:
    console.print(escape(text), style="yellow" if warning else "dim")


def render_chat_help(console: Console, commands: tuple[tuple[str, str, str], ...]) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    for name, argument, description in commands:
        table.add_row(f"[bold]{escape(name)}[/] {escape(argument)}", escape(description))
    console.print(table)
    console.print("[dim]Anything else is a question; follow-ups can refer to earlier answers.[/]")


def render_excerpt(console: Console, citation: Citation, text: str, start: int, end: int) -> None:
    """Citation `[n]` in its article (`text[start:end]`), the quoted span highlighted."""
    from rich.text import Text

    console.print(citation_line(citation))
    excerpt = Text("…" if start > 0 and text[start - 1] != "\n" else "")
    excerpt.append(text[start : citation.start])
    excerpt.append(citation.quote, style="bold yellow")
    excerpt.append(text[citation.end : end])
    excerpt.append("…" if end < len(text) and text[end] != "\n" else "")
    console.print(excerpt)
    console.print()


def render_after_stream(console: Console, answer: Answer, streamed: str) -> None:
    """Close a streamed answer; if checking changed its text, show the checked text too.

    The stream shows the model's draft; the citations below belong to the checked text, whose
    markers are renumbered by first use and never point at a missing passage.
    """
    console.print()
    if " ".join(streamed.split()) != " ".join(answer.text.split()):
        console.print("[dim]With its citations checked:[/]")
        render_answer_text(console, answer)
    render_citations(console, answer)


# (key, label, format) of every eval metric, in table order; `{k}` is the passages retrieved.
EVAL_METRICS = (
    ("questions", "questions", "count"),
    ("accuracy", "accuracy", "rate"),
    ("exact_match", "exact match", "rate"),
    ("f1", "token F1", "rate"),
    ("answer_hit_at_k", "answer hit@{k}", "rate"),
    ("evidence_hit_at_k", "evidence hit@{k}", "rate"),
    ("mrr", "MRR@{k}", "rate"),
    ("abstention_rate", "abstained", "rate"),
    ("abstention_precision", "abstention precision", "rate"),
    ("abstention_recall", "abstention recall", "rate"),
    ("abstention_f1", "abstention F1", "rate"),
    ("truthfulness", "truthfulness", "signed"),
    ("citation_validity", "citation validity", "rate"),
    ("choice_accuracy", "choice accuracy", "rate"),
    ("latency_mean", "latency mean", "seconds"),
    ("latency_p95", "latency p95", "seconds"),
)


def render_eval_report(console: Console, report: "Report") -> None:
    """The metrics overall and per group (answerable, type, --by fields), one row a metric."""
    settings, timings = report.settings, report.timings
    ingest = timings.ingest_seconds
    console.print(
        f"[bold]{escape(report.test_set.path)}[/]: {report.test_set.evaluated} questions, "
        f"{escape(byline(settings.answerer, settings.model))}, k={settings.k}, "
        f"{escape(settings.embedding_model)}, "
        f"{settings.corpus.articles} articles"
        + (f"; ingest {ingest:.1f}s" if ingest is not None else "")
        + f"; questions {timings.questions_seconds:.1f}s",
        soft_wrap=True,
    )
    columns = [("overall", "", report.metrics.overall.to_json())]
    for group, labels in report.metrics.breakdowns.items():
        if len(labels) > 1:
            columns += [(label, group, summary.to_json()) for label, summary in labels.items()]
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("metric", no_wrap=True)
    for label, group, _ in columns:
        # "answerable" over "answerable" says nothing; the other groups name their field.
        named = group and group != "answerable"
        header = escape(label) + (f"\n[dim]{escape(group)}[/]" if named else "")
        table.add_column(header, justify="right", overflow="fold")
    for key, label, kind in EVAL_METRICS:
        values = [values.get(key) for _, _, values in columns]
        if any(value is not None for value in values):
            table.add_row(label.format(k=settings.k), *(format_metric(v, kind) for v in values))
    print_unsqueezed(console, table)


def render_comparison(console: Console, comparison: "Comparison") -> None:
    """The overall metrics that changed against an earlier report, and the flipped questions."""
    console.print()
    if not comparison.changed and comparison.scores_unchanged:
        console.print("No metric changed and no question flipped.")
        return
    kinds = {key: (label.replace("@{k}", "@k"), kind) for key, label, kind in EVAL_METRICS}
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("metric", "before", "after", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for change in comparison.changed:
        label, kind = kinds.get(change.name, (change.name, "rate"))
        delta = change.change
        better = delta is not None and (delta > 0) != (kind == "seconds")
        shown = format_metric(delta, "signed") if delta is not None else "–"
        table.add_row(
            label,
            format_metric(change.old, kind),
            format_metric(change.new, kind),
            f"[{'green' if better else 'red'}]{shown}[/]",
        )
    print_unsqueezed(console, table)
    if comparison.only_old or comparison.only_new:
        console.print(
            f"[dim]{comparison.only_old} questions only in the earlier report, "
            f"{comparison.only_new} only in this one.[/]"
        )
    if comparison.scores_unchanged:
        console.print("No score changed and no question flipped.")
        return
    flipped = len(comparison.flips)
    console.print(f"[bold]{flipped} question{'' if flipped == 1 else 's'} flipped[/]")
    for flip in comparison.flips:
        console.print(
            f"  {escape(flip.id)}: {flip.old} → {flip.new}  [dim]{escape(flip.question)}[/]",
            soft_wrap=True,
        )


def print_unsqueezed(console: Console, table: Table) -> None:
    """A table at its natural width when the output is a file or pipe, where nothing wraps."""
    from rich.measure import Measurement

    if not console.is_terminal:
        natural = Measurement.get(console, console.options.update_width(1000), table).maximum
        if natural > console.width:
            # Console.print never goes wider than its console, so print through a wider one.
            console = SafeConsole(file=console.file, width=natural, highlight=False)
    console.print(table)


def format_metric(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "count":
        return str(value)
    if kind == "seconds":
        return f"{value:.3f}s"
    if kind == "signed":
        return f"{value:+.3f}"
    return f"{value:.3f}"
