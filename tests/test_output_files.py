"""`--out` writes the whole report where the path leads, and never destroys what it names."""

import json
import os
import stat
import threading

import pytest

from tests.conftest import SEEDS

TEST_SET = SEEDS / "eval" / "seed.jsonl"


def run_eval(run, out):
    return run("eval", TEST_SET, "--corpus", SEEDS, "--out", out)


def test_out_through_a_symlink_writes_the_target_and_keeps_the_link(run, tmp_path):
    target = tmp_path / "reports" / "latest.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    result = run_eval(run, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == target
    assert "metrics" in json.loads(target.read_text())
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


def test_out_to_a_fifo_writes_into_it_and_keeps_it(run, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    result = run_eval(run, fifo)
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert "metrics" in json.loads(received[0])


def test_out_to_a_fifo_nobody_reads_is_one_line_and_the_fifo_stays(run, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = run_eval(run, fifo)
    assert result.exit_code == 1
    assert "nothing is reading" in result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def device(folder, name, minor):
    """A memory device node of the kernel's own (1, minor) in `folder`, so a test that went
    wrong could never replace the machine's /dev/null or /dev/full."""
    path = folder / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


def test_out_to_a_device_writes_to_it_and_never_replaces_it(run, tmp_path):
    null = device(tmp_path, "null", 3)
    result = run_eval(run, null)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(null.stat().st_mode)


def test_out_to_a_full_device_is_one_line_and_the_device_stays(run, tmp_path):
    full = device(tmp_path, "full", 7)
    result = run_eval(run, full)
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert stat.S_ISCHR(full.stat().st_mode)


def test_out_to_a_directory_is_refused_before_the_run(run, tmp_path):
    result = run_eval(run, tmp_path)
    assert result.exit_code == 2
    assert "is a directory" in result.stderr
