"""Everything qa shows people (Rich) or programs (JSON)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qa.answering import Answer
from qa.citations import Citation
from qa.ingestion import IngestReport, ProgressCallback
from qa.retrieval import Passage
from qa.store import ArticleRecord

QUOTE_PREVIEW_CHARS = 300


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def render_error(console: Console, message: str) -> None:
    console.print(f"[bold red]Error:[/] {escape(message)}")


def render_answer_text(console: Console, answer: Answer) -> None:
    style = "yellow" if answer.abstained or answer.unsupported else ""
    console.print(escape(answer.text), style=style)


def render_citations(console: Console, answer: Answer) -> None:
    """The numbered sources under an answer, each with its verbatim quote and offsets."""
    if answer.unsupported:
        console.print("[yellow]No valid citation: this answer is not supported by the passages.[/]")
    if answer.dropped_markers:
        dropped = ", ".join(f"[{n}]" for n in answer.dropped_markers)
        console.print(f"[dim]Removed markers that point at no passage: {escape(dropped)}[/]")
    if not answer.citations:
        return
    console.print()
    for citation in answer.citations:
        console.print(citation_line(citation))
        console.print(f"    [italic]“{escape(preview(citation.quote))}”[/]")
    byline = answer.answerer + (f" ({answer.model})" if answer.model else "")
    console.print(f"\n[dim]answered by {escape(byline)}[/]")


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


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The `qa ask --json` object."""
    return {
        "question": answer.question,
        "searched": answer.searched or answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "unsupported": answer.unsupported,
        "answerer": answer.answerer,
        "model": answer.model,
        "dropped_markers": answer.dropped_markers,
        "citations": [citation_to_json(c) for c in answer.citations],
        "passages": [passage_to_json(p) for p in answer.passages],
    }


def citation_to_json(citation: Citation) -> dict[str, Any]:
    passage = citation.passage
    return {
        "marker": citation.marker,
        "article_id": passage.article_id,
        "chunk_id": passage.chunk_id,
        "title": passage.title,
        "date": passage.date,
        "source": passage.source,
        "url": passage.url,
        "quote": citation.quote,
        "start": citation.start,
        "end": citation.end,
    }


def passage_to_json(passage: Passage) -> dict[str, Any]:
    return {
        "rank": passage.rank,
        "article_id": passage.article_id,
        "chunk_id": passage.chunk_id,
        "title": passage.title,
        "date": passage.date,
        "score": passage.score,
        "text": passage.text,
        "start": passage.start,
        "end": passage.end,
    }


def render_ingest_report(console: Console, report: IngestReport) -> None:
    console.print(
        f"[green]{len(report.added)} added[/], [cyan]{len(report.updated)} updated[/], "
        f"{len(report.unchanged)} unchanged, "
        f"[yellow]{len(report.skipped)} skipped[/] "
        f"[dim]({report.chunks_embedded} chunks embedded in {report.seconds:.1f}s)[/]"
    )
    render_skipped(console, report.skipped)


def render_skipped(console: Console, skipped: list) -> None:
    for item in skipped:
        console.print(f"  [yellow]skipped[/] {escape(item.location)}: {escape(item.reason)}")


def ingest_report_to_json(report: IngestReport) -> dict[str, Any]:
    return {
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "skipped": [{"location": s.location, "reason": s.reason} for s in report.skipped],
        "chunks_embedded": report.chunks_embedded,
        "seconds": round(report.seconds, 3),
    }


def render_sources(console: Console, records: list[ArticleRecord], collection: str) -> None:
    table = Table(title=f"{len(records)} articles in {collection!r}", title_justify="left")
    for column in ("id", "title", "date", "chunks"):
        table.add_column(column, justify="right" if column == "chunks" else "left")
    for record in records:
        table.add_row(
            escape(record.id), escape(record.title), record.date or "", str(record.chunks)
        )
    console.print(table)


def sources_to_json(records: list[ArticleRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "title": r.title,
            "date": r.date,
            "source": r.source,
            "url": r.url,
            "chunks": r.chunks,
        }
        for r in records
    ]


@contextmanager
def progress_bar(console: Console, description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on a terminal; nothing when output goes to a file or pipe."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_PREVIEW_CHARS else text[: QUOTE_PREVIEW_CHARS - 1] + "…"
