import json
import os
from contextlib import contextmanager
from pathlib import Path

from qa.loading import iter_article_files, load_articles

NOBODY = 65534


@contextmanager
def as_an_ordinary_user():
    """Permission bits do not stop root; for the while, act as a user they do stop."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_ingest_reports_a_pipe_and_a_broken_link_in_a_folder_and_loads_the_rest(run, tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "good.txt").write_text("The harbour opened a new ferry line on Friday.")
    os.mkfifo(folder / "pipe.txt")
    (folder / "gone.md").symlink_to(folder / "deleted.md")

    result = run("ingest", folder, "--json")
    assert result.exit_code == 0, result.output
    skipped = {s["location"]: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    assert skipped == {
        str(folder / "gone.md"): "broken link",
        str(folder / "pipe.txt"): "not a regular file",
    }
    assert [a["id"] for a in json.loads(run("sources", "--json").stdout)] == ["good"]

    shown = run("ingest", folder)
    assert shown.exit_code == 0, shown.output
    assert f"skipped {folder / 'pipe.txt'}: not a regular file" in shown.stderr
    assert f"skipped {folder / 'gone.md'}: broken link" in shown.stderr


def test_a_broken_link_given_by_name_is_skipped_as_a_broken_link(tmp_path):
    link = tmp_path / "old.txt"
    link.symlink_to(tmp_path / "missing.txt")
    result = load_articles([link])
    assert [(s.location, s.reason) for s in result.skipped] == [(str(link), "broken link")]


def test_a_folder_that_cannot_be_listed_is_skipped_with_the_reason(tmp_path, monkeypatch):
    # Relative paths: an ordinary user may not pass through pytest's own temporary folders.
    tmp_path.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    Path("news/locked").mkdir(parents=True)
    Path("news/open.txt").write_text("The museum reopened on Sunday.")
    Path("news/locked/hidden.txt").write_text("Nobody can list this folder.")
    Path("news/sealed.txt").write_text("Nobody can read this file.")
    Path("news/locked").chmod(0)
    Path("news/sealed.txt").chmod(0)
    try:
        with as_an_ordinary_user():
            result = load_articles([Path("news")])
    finally:
        Path("news/locked").chmod(0o755)
    assert [a.id for a in result.articles] == ["open"]
    assert [(s.location, s.reason) for s in result.skipped] == [
        ("news/locked", "cannot read: permission denied"),
        ("news/sealed.txt", "cannot read: permission denied"),
    ]


def test_folders_are_listed_in_name_order_without_hidden_or_unsupported_files(tmp_path):
    for name in ("b.txt", "a/z.md", "a/.draft.txt", ".git/x.txt", "a.txt", "notes.docx"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("Text.")
    files = [str(path.relative_to(tmp_path)) for path in iter_article_files([tmp_path])]
    assert files == ["a/z.md", "a.txt", "b.txt"]
