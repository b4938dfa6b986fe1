"""Everything qa shows people, with Rich; records give their own JSON (`to_json()`)."""

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table

from qa.errors import QAError
from qa.masking import mask_secrets
from qa.terminal_text import terminal_safe
from qa.types import Answer, Citation, Passage, ProgressCallback

if TYPE_CHECKING:
    # Only `qa eval` renders these; `qa ask` should not import the eval modules to start, nor
    # the ingest pipeline (its fetching and writing) or the store.
    from qa.evaluation.records import Report
    from qa.evaluation.reports import Comparison
    from qa.ingestion import IngestReport
    from qa.store import ArticleRecord

QUOTE_PREVIEW_CHARS = 300
# Skips of one reason beyond this many are counted, not listed (all are in --json).
SKIPS_LISTED_PER_REASON = 3
REASON_DETAILS = re.compile(r"'[^']*'|\"[^\"]*\"|\([^)]*\)|\d+")
# What would end a field or a record of tab-separated output early.
FIELD_BREAKS = re.compile(r"[\t\n\r\u2028\u2029]+")


class SafeConsole(Console):
    """A console that never passes on a control character from the text it shows.

    Everything printed (answers, titles, passages, errors, tables) is made of segments; Rich's
    own styling is added after this, so colours still work. Off a terminal Rich adds no
    styling at all, and `NO_COLOR` takes the colours out on one.
    """

    def __init__(self, **options) -> None:
        super().__init__(**options)
        if "soft_wrap" not in options:
            # A file or pipe has no width: Rich would break lines at 80 columns, and a
            # title or quote split over two lines is lost to grep.
            self.soft_wrap = not self.is_terminal

    def _render_buffer(self, buffer) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(terminal_safe(segment.text), segment.style)
            for segment in buffer
        )


def stdout_console() -> Console:
    return SafeConsole(highlight=False)


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


def print_stream(
    console: Console,
    pieces: Iterable[str],
    streamed: list[str],
    before_first: Callable[[], None] | None = None,
) -> None:
    """Prints each piece of a streamed answer as it comes, keeping them in `streamed`;
    `before_first` runs just before the first piece is shown."""
    for piece in pieces:
        if before_first and not streamed:
            before_first()
        streamed.append(piece)
        console.print(piece, end="", markup=False, highlight=False)


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
    title = escape(one_line(passage.title))
    return f"[bold cyan][{citation.marker}][/] [bold]{title}[/] [dim]{details}[/]"


def copies_line(passage: Passage) -> str:
    """The other articles carrying the same story: `id (date), …`."""
    return ", ".join(f"{copy.article_id} ({copy.date or 'undated'})" for copy in passage.also_in)


def render_answer(console: Console, answer: Answer) -> None:
    render_answer_text(console, answer)
    render_citations(console, answer)


def render_passages(console: Console, passages: list[Passage]) -> None:
    for passage in passages:
        header = f"[bold]#{passage.rank}[/] {escape(one_line(passage.title))}"
        meta = f"{passage.date or 'undated'} · score {passage.score:.3f} · {passage.chunk_id}"
        console.print(f"{header} [dim]{escape(meta)}[/]")
        console.print(escape(passage.text), style="dim")
        console.print()


def render_ingest_report(console: Console, report: "IngestReport") -> None:
    console.print(
        f"[green]{len(report.added)} added[/], [cyan]{len(report.updated)} updated[/], "
        f"{len(report.unchanged)} unchanged, "
        f"[yellow]{len(report.skipped)} skipped[/] "
        f"[dim]({report.chunks_embedded} chunks embedded in {report.seconds:.1f}s)[/]"
    )
    render_skipped(console, report.skipped)
    for note in report.notes:
        where, message = escape(one_line(note.location)), escape(one_line(note.message))
        console.print(f"  [yellow]note[/] {where}: {message}")


def render_skipped(console: Console, skipped: list) -> None:
    """Skips grouped by kind of reason: the first few of each, then how many more."""
    by_kind: dict[str, list] = {}
    for item in skipped:
        by_kind.setdefault(reason_kind(item.reason), []).append(item)
    for kind, items in by_kind.items():
        for item in items[:SKIPS_LISTED_PER_REASON]:
            where, reason = escape(one_line(item.location)), escape(one_line(item.reason))
            console.print(f"  [yellow]skipped[/] {where}: {reason}")
        more = len(items) - SKIPS_LISTED_PER_REASON
        if more > 0:
            console.print(
                f"  [yellow]skipped[/] {more} more: {escape(kind)} [dim](all with --json)[/]"
            )


def reason_kind(reason: str) -> str:
    """A skip reason without what differs between items (ids, line numbers, parentheses)."""
    return " ".join(REASON_DETAILS.sub(" ", reason).split())


def render_sources(console: Console, records: "list[ArticleRecord]", collection: str) -> None:
    header = ("id", "title", "date", "chunks")
    rows = [(r.id, r.title, r.date or "", str(r.chunks)) for r in records]
    if not console.is_terminal:
        print_tab_separated(console, header, rows)
        return
    table = Table(title=f"{len(records)} articles in {collection!r}", title_justify="left")
    for column in header:
        table.add_column(column, justify="right" if column == "chunks" else "left")
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)


def print_tab_separated(
    console: Console, header: tuple[str, ...], rows: list[tuple[str, ...]]
) -> None:
    """A table for a file or pipe: one header line, then one line a record, fields split by
    tabs, so grep, cut, sort and wc -l see whole records."""
    lines = ("\t".join(tab_separated_field(field) for field in row) for row in (header, *rows))
    # Written past Rich, which would turn the tabs into spaces.
    console.file.write("".join(line + "\n" for line in lines))
    console.file.flush()


def tab_separated_field(text: str) -> str:
    return terminal_safe(one_line(text))


def one_line(text: str) -> str:
    """`text` with its tabs, newlines and line separators made spaces."""
    return FIELD_BREAKS.sub(" ", text)


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
    if not console.is_terminal:
        rows = [(f"{name} {arg}".strip(), description) for name, arg, description in commands]
        print_tab_separated(console, ("command", "description"), rows)
    else:
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


def render_eval_summary(console: Console, report: "Report") -> None:
    """What was evaluated, how, and how long it took: one line."""
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


def render_eval_report(console: Console, report: "Report") -> None:
    """The metrics overall and per group (answerable, type, --by fields), one row a metric."""
    columns = [("overall", "", report.metrics.overall.to_json())]
    for group, labels in report.metrics.breakdowns.items():
        if len(labels) > 1:
            # "answerable" over "answerable" says nothing; the other groups name their field.
            named = group if group != "answerable" else ""
            columns += [(label, named, summary.to_json()) for label, summary in labels.items()]
    rows = [
        (label.format(k=report.settings.k), kind, [values.get(key) for *_, values in columns])
        for key, label, kind in EVAL_METRICS
        if any(values.get(key) is not None for *_, values in columns)
    ]
    if not console.is_terminal:
        header = [f"{group}={label}" if group else label for label, group, _ in columns]
        records = [
            (metric, *(format_metric(value, kind, "") for value in values))
            for metric, kind, values in rows
        ]
        print_tab_separated(console, ("metric", *header), records)
        return
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("metric", no_wrap=True)
    for label, group, _ in columns:
        header = escape(label) + (f"\n[dim]{escape(group)}[/]" if group else "")
        table.add_column(header, justify="right", overflow="fold")
    for metric, kind, values in rows:
        table.add_row(metric, *(format_metric(value, kind) for value in values))
    console.print(table)


def render_comparison(console: Console, comparison: "Comparison") -> None:
    """The overall metrics that changed against an earlier report, and the flipped questions."""
    console.print()
    if not comparison.changed and comparison.scores_unchanged:
        console.print("No metric changed and no question flipped.")
        return
    render_changes(console, comparison)
    if comparison.only_old or comparison.only_new:
        console.print(
            f"[dim]{comparison.only_old} questions only in the earlier report, "
            f"{comparison.only_new} only in this one.[/]"
        )
    if comparison.scores_unchanged:
        console.print("No score changed and no question flipped.")
        return
    render_flips(console, comparison)


def render_changes(console: Console, comparison: "Comparison") -> None:
    """Each changed metric: before, after, and the change (green when for the better)."""
    kinds = {key: (label.replace("@{k}", "@k"), kind) for key, label, kind in EVAL_METRICS}
    header = ("metric", "before", "after", "change")
    missing = "–" if console.is_terminal else ""
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in header:
        table.add_column(column, justify="left" if column == "metric" else "right")
    rows = []
    for change in comparison.changed:
        label, kind = kinds.get(change.name, (change.name, "rate"))
        old, new = (format_metric(value, kind, missing) for value in (change.old, change.new))
        delta = change.change
        shown = format_metric(delta, "signed", missing)
        better = delta is not None and (delta > 0) != (kind == "seconds")
        rows.append((label, old, new, shown))
        table.add_row(label, old, new, f"[{'green' if better else 'red'}]{shown}[/]")
    if console.is_terminal:
        console.print(table)
    else:
        print_tab_separated(console, header, rows)


def render_flips(console: Console, comparison: "Comparison") -> None:
    """The questions whose outcome changed: a list on a terminal, a table in a pipe."""
    flips = comparison.flips
    if not console.is_terminal:
        console.print()
        rows = [(flip.id, flip.old, flip.new, flip.question) for flip in flips]
        print_tab_separated(console, ("id", "before", "after", "question"), rows)
        return
    console.print(f"[bold]{len(flips)} question{'' if len(flips) == 1 else 's'} flipped[/]")
    for flip in flips:
        console.print(
            f"  {escape(flip.id)}: {flip.old} → {flip.new}  [dim]{escape(flip.question)}[/]",
            soft_wrap=True,
        )


def format_metric(value: float | None, kind: str, missing: str = "–") -> str:
    if value is None:
        return missing
    if kind == "count":
        return str(value)
    if kind == "seconds":
        return f"{value:.3f}s"
    if kind == "signed":
        return f"{value:+.3f}"
    return f"{value:.3f}"
