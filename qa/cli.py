"""The `qa` command: parse options, call the core, render."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from qa.answerers import names as answerer_names
from qa.errors import QAError


class OneLineErrors(TyperGroup):
    """Every way a command can fail ends in one line on stderr and an exit code.

    A usage error (a bad option value, a missing argument) is one line, not a box; anything
    unexpected is one line naming the command, with the traceback only under QA_DEBUG=1.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            code = one_line_error("Aborted.", 1)
        except Exception as error:
            if is_usage_error(error):
                message = usage_message(error)
                # `qa` alone has shown its help already, and has nothing more to say.
                code = one_line_error(message, error.exit_code) if message else error.exit_code
            else:
                from qa.settings import debug_enabled

                if debug_enabled():
                    raise
                code = one_line_error(unexpected(error, command_name(args)), 1)
        if not standalone_mode:
            return code
        sys.exit(code or 0)


def is_usage_error(error: Exception) -> bool:
    """Click's own errors (bad option values, missing arguments, unknown commands); Typer
    carries its own copy of Click, whose classes are private, so they are known by shape."""
    return callable(getattr(error, "format_message", None)) and isinstance(
        getattr(error, "exit_code", None), int
    )


def usage_message(error: Exception) -> str:
    message = error.format_message().strip()
    if not message:
        return ""
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "qa"
    end = "" if message.endswith((".", "!", "?")) else "."
    return f"{message}{end} See `{command} --help`."


def one_line_error(message: str, code: int) -> int:
    from qa.rendering import render_error, stderr_console

    render_error(stderr_console(), message)
    return code


def unexpected(error: Exception, command: str) -> str:
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return (
        f"{command} failed unexpectedly ({' '.join(what.split())[:300]}). This is a bug in qa: "
        "please report it with the command you ran; QA_DEBUG=1 shows the traceback."
    )


def command_name(args: list[str]) -> str:
    words = [arg for arg in args if not arg.startswith("-")]
    return f"qa {words[0]}" if words else "qa"


app = typer.Typer(
    cls=OneLineErrors,
    help="Ask questions about news articles and get answers with checkable citations.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)

Home = Annotated[
    Path | None,
    typer.Option("--home", envvar="QA_HOME", help="Data directory (default: per-user dir)."),
]
Collection = Annotated[
    str | None, typer.Option("--collection", "-c", help="Collection name. \\[env: QA_COLLECTION]")
]
ChromaUrl = Annotated[
    str | None,
    typer.Option("--chroma-url", help="Use a Chroma server at this URL. \\[env: QA_CHROMA_URL]"),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
K = Annotated[
    int | None,
    typer.Option("--k", "-k", min=1, max=100, help="Passages to retrieve. \\[env: QA_K]"),
]
Llm = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help=f"Answerer: {', '.join(answerer_names())}, or a LangChain chat model as "
        "provider:model (anthropic:claude-sonnet-4-5, ollama:llama3.2). \\[env: QA_LLM]",
        show_default=False,
    ),
]
Model = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Chat model name or GGUF path. \\[env: QA_MODEL]"),
]
Retrieval = Annotated[
    str | None,
    typer.Option(
        "--retrieval",
        help="Search: hybrid (meaning and keywords), dense or keyword. \\[env: QA_RETRIEVAL]",
        show_default=False,
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible server URL. \\[env: OPENAI_BASE_URL]"),
]


def main() -> None:
    app()


@contextmanager
def user_errors() -> Iterator[None]:
    """A user error is one line on stderr and an exit code, never a traceback."""
    from qa.rendering import render_error, stderr_console

    try:
        yield
    except QAError as error:
        render_error(stderr_console(), str(error))
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        stderr_console().print("[yellow]Interrupted.[/]")
        raise typer.Exit(130) from None


def settings_for(**flags: Any):
    """Settings from the environment, with the command's options that were given on top."""
    from pydantic import ValidationError

    from qa.answerers import check_choice
    from qa.errors import InputError
    from qa.settings import get_settings, problems

    try:
        settings = get_settings(**flags)
    except ValidationError as error:
        raise InputError(f"Invalid configuration: {problems(error)}.") from None
    check_choice(settings)
    return settings


def answering_settings(
    k: int | None,
    retrieval: str | None,
    llm: str | None,
    model: str | None,
    base_url: str | None,
    home: Path | None,
    collection: str | None,
    chroma_url: str | None,
):
    """The settings of a command that answers: its retrieval, answerer and store options."""
    return settings_for(
        k=k,
        retrieval=retrieval,
        llm=llm,
        model=model,
        base_url=base_url,
        home=home,
        collection=collection,
        chroma_url=chroma_url,
    )


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


FeedLists = Annotated[
    list[Path] | None,
    typer.Option(
        "--feeds", help="A text file of feed URLs, one a line (repeatable).", show_default=False
    ),
]


@app.command()
def ingest(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, directories (searched recursively), article URLs, RSS/Atom feed URLs "
            "or OPML subscription files.",
            show_default=False,
        ),
    ] = None,
    feeds: FeedLists = None,
    refetch: Annotated[
        bool | None,
        typer.Option(
            "--refetch",
            help="Fetch every feed and page again, not only what changed since the last run.",
            show_default=False,
        ),
    ] = None,
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
    json_output: Json = False,
) -> None:
    """Add articles from files, web pages and feeds; unchanged ones are not embedded again.

    Files: .txt, .md, .html, .json, .jsonl. A URL is fetched and its article extracted; a feed
    URL brings in the page of every entry that is new or updated since the last run. Each
    source that fails is one "skipped" line.
    """
    from qa.errors import InputError
    from qa.ingestion import NoArticlesError
    from qa.rendering import (
        progress_bars,
        render_ingest_report,
        render_skipped,
        stderr_console,
    )
    from qa.subscriptions import subscribed_sources
    from qa.workspace import Workspace

    err = stderr_console()
    with user_errors():
        workspace = Workspace(
            settings_for(refetch=refetch, home=home, collection=collection, chroma_url=chroma_url)
        )
        sources = subscribed_sources(sources or [], feeds or [])
        if not sources:
            raise InputError("Nothing to ingest.", "Give files, folders, URLs or --feeds FILE.")
        try:
            with progress_bars(err, "Fetching", "Embedding") as (fetched, embedded):
                report = workspace.ingest(sources, embedded, fetch_progress=fetched)
        except NoArticlesError as error:
            render_skipped(err, error.skipped)
            raise
    if json_output:
        print_json(report.to_json())
    else:
        render_ingest_report(err, report)


@app.command()
def watch(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Feed URLs, OPML files, pages, files or folders, ingested every round.",
            show_default=False,
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every", help="Time between rounds: 15m, 1h, 1h30m (1m at least).", show_default=False
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run one round and exit (for cron or a systemd timer).")
    ] = False,
    feeds: FeedLists = None,
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object a line for each round.")
    ] = False,
) -> None:
    """Keep the collection fresh: ingest SOURCES every --every, asking each feed and page only
    for what changed; one line a round.

    A failing feed is retried later (as its Retry-After asks, else less often each time) while
    the others go on. Ctrl-C or SIGTERM stop it once the write under way is whole (exit 0).
    """
    from qa.errors import InputError
    from qa.rendering import render_skipped, stderr_console
    from qa.watch import checked_sources, interrupt_on_terminate, parse_interval
    from qa.watch import watch as run_watch
    from qa.workspace import Workspace

    err = stderr_console()

    def show(result) -> None:
        if json_output:
            typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
            return
        err.print(result.line(), markup=False, highlight=False)
        render_skipped(err, list(result.failures))

    with user_errors():
        settings = settings_for(home=home, collection=collection, chroma_url=chroma_url)
        interval = parse_interval(every) if every else None
        if interval is None and not once:
            raise InputError("How often? Give --every (e.g. --every 15m), or --once.")
        checked_sources(sources or [], feeds or [])
        with interrupt_on_terminate():
            try:
                last = run_watch(
                    Workspace(settings),
                    sources or [],
                    feeds or [],
                    interval,
                    show,
                    rounds=1 if once else None,
                )
            except KeyboardInterrupt:
                err.print("Stopped. What was written stays; the next round fetches the rest.")
                return
    if not last.ok:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    k: K = None,
    retrieval: Retrieval = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Only use articles published on or before this YYYY-MM-DD."),
    ] = None,
    llm: Llm = None,
    model: Model = None,
    base_url: BaseUrl = None,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Stream the answer in a terminal.")
    ] = True,
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
    json_output: Json = False,
) -> None:
    """Answer a question from the ingested articles, citing the passages it quotes."""
    from qa.answerers import passed_over
    from qa.rendering import (
        own_line_for_errors,
        print_stream,
        render_answer,
        render_notice,
        stderr_console,
        stdout_console,
    )
    from qa.workspace import Workspace

    out = stdout_console()
    with user_errors():
        as_of = parse_date_option(as_of)
        settings = answering_settings(
            k, retrieval, llm, model, base_url, home, collection, chroma_url
        )
        workspace = Workspace(settings)
        for note in passed_over(settings):
            render_notice(stderr_console(), note, warning=True)
        streaming = stream and not json_output and out.is_terminal
        answering = workspace.ask(question, as_of=as_of, stream=streaming)
        streamed: list[str] = []
        with own_line_for_errors(out, streamed):
            if streaming:
                print_stream(out, answering, streamed)
            answer = answering.answer()
    if json_output:
        print_json(answer.to_json())
    elif streaming:
        from qa.rendering import render_after_stream

        render_after_stream(out, answer, "".join(streamed))
    else:
        render_answer(out, answer)


@app.command()
def sources(
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
    json_output: Json = False,
) -> None:
    """List the ingested articles: id, title, date and number of chunks.

    In a pipe or file: one article a line, tab-separated, under one header line.
    """
    from qa.rendering import render_sources, stdout_console
    from qa.workspace import Workspace

    with user_errors():
        settings = settings_for(home=home, collection=collection, chroma_url=chroma_url)
        records = Workspace(settings).sources()
    if json_output:
        print_json([record.to_json() for record in records])
    else:
        render_sources(stdout_console(), records, settings.store.collection)


@app.command()
def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
) -> None:
    """Delete every article and vector of a collection."""
    from qa.rendering import stderr_console
    from qa.workspace import Workspace

    err = stderr_console()
    with user_errors():
        settings = settings_for(home=home, collection=collection, chroma_url=chroma_url)
        workspace = Workspace(settings)
        location = workspace.store().location
        if not yes and not typer.confirm(
            f"Delete all articles in collection {settings.store.collection!r} at {location}?",
            err=True,
        ):
            err.print("Nothing deleted.")
            raise typer.Exit(1)
        removed = workspace.reset()
    err.print(f"Deleted collection {settings.store.collection!r} ({removed} articles).")


def parse_date_option(value: str | None) -> str | None:
    """A YYYY-MM-DD option value, or a clear input error: the same rule as a test set's dates."""
    if value is None:
        return None
    from qa.errors import InputError
    from qa.loading import parse_iso_date

    try:
        return parse_iso_date(value)
    except ValueError:
        raise InputError(f"Invalid date {value!r}.", "Use YYYY-MM-DD.") from None


@app.command()
def chat(
    k: K = None,
    retrieval: Retrieval = None,
    llm: Llm = None,
    model: Model = None,
    base_url: BaseUrl = None,
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
) -> None:
    """Chat about the articles: follow-up questions, cited answers; /help lists commands.

    Reads one question a line when input is piped, and exits at the end of it.
    """
    from qa.chat.repl import run_chat

    with user_errors():
        settings = answering_settings(
            k, retrieval, llm, model, base_url, home, collection, chroma_url
        )
        code = run_chat(settings)
    raise typer.Exit(code)


@app.command("eval")
def evaluate(
    test_set: Annotated[Path, typer.Argument(help="JSONL test set, one question a line.")],
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            "--corpus",
            help="Articles (file or folder, repeatable) to ingest first, into a temporary "
            "collection unless --collection names one.",
        ),
    ] = None,
    k: K = None,
    retrieval: Retrieval = None,
    llm: Llm = None,
    model: Model = None,
    base_url: BaseUrl = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N questions.")
    ] = None,
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="Also break results down by this test-set field (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the full JSON report to this file.")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option("--compare", help="Show changes against an earlier --out report.")
    ] = None,
    min_accuracy: Annotated[
        float | None,
        typer.Option("--min-accuracy", min=0.0, max=1.0, help="Exit 1 if accuracy is below this."),
    ] = None,
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
    json_output: Json = False,
) -> None:
    """Score answers, retrieval and abstention against a test set; see README, Evaluation.

    In a pipe or file the tables are tab-separated, one row a line; the run's summary line
    goes to stderr.
    """
    from qa.evaluation.reports import (
        SavedReport,
        compare_reports,
        comparison_to_json,
        load_report,
        write_report,
    )
    from qa.evaluation.run import run_eval
    from qa.evaluation.testset import load_eval_set
    from qa.output_files import check_output_path
    from qa.rendering import progress_bar, render_comparison, render_eval_report, stderr_console

    err = stderr_console()
    with user_errors():
        eval_set = load_eval_set(test_set)
        previous = load_report(compare) if compare else None
        if out:
            check_output_path(out)
        settings = answering_settings(
            k, retrieval, llm, model, base_url, home, collection, chroma_url
        )
        report = run_eval(
            eval_set,
            settings,
            questions=eval_set.questions[:limit],
            corpus=corpus or [],
            keep_collection=collection is not None,
            by=by or [],
            progress=lambda label: progress_bar(err, label),
        )
        if out:
            write_report(report, out)
    comparison = compare_reports(previous, SavedReport.of(report)) if previous else None
    accuracy = report.metrics.overall.accuracy
    if json_output:
        data = {"metrics": report.metrics.to_json(), "timings": report.timings.to_json()}
        if comparison:
            data["comparison"] = comparison_to_json(comparison)
        print_json(data)
    else:
        from qa.rendering import render_eval_summary, stdout_console

        out_console = stdout_console()
        render_eval_summary(err, report)
        render_eval_report(out_console, report)
        if comparison:
            render_comparison(out_console, comparison)
        if out:
            err.print(f"Report written to {out}.")
    if min_accuracy is not None and (accuracy or 0.0) < min_accuracy:
        err.print(f"[red]Accuracy {accuracy or 0.0:.3f} is below --min-accuracy {min_accuracy}.[/]")
        raise typer.Exit(1)


@app.command("mcp")
def mcp_server(
    k: K = None,
    retrieval: Retrieval = None,
    llm: Llm = None,
    model: Model = None,
    base_url: BaseUrl = None,
    home: Home = None,
    collection: Collection = None,
    chroma_url: ChromaUrl = None,
) -> None:
    """Serve ask, search and sources to AI agents (Claude Desktop, …) over MCP on stdin/stdout.

    Stdout carries only protocol messages; logs and errors go to stderr.
    """
    from qa.mcp_server import serve

    with user_errors():
        settings = answering_settings(
            k, retrieval, llm, model, base_url, home, collection, chroma_url
        )
        serve(settings)
