"""Every fetch ends by its deadline and within its size limit, however slowly or long the
server replies: headers that trickle or never end, bodies without a length, redirect chains."""

import threading
import time

import pytest

from tests.news_site import Route, serve_news_site, serve_raw

# Far longer than any deadline below: a fetch that waits for the whole reply never ends.
ENDLESS = 100_000
GENEROUS = 90  # seconds: only a fetch that ignores its deadline takes this long


def finished(run, *args: str):
    """`qa ARGS...` run to its end; fails if it is still running after GENEROUS seconds."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run(*args)), daemon=True)
    worker.start()
    worker.join(GENEROUS)
    assert "result" in outcome, f"qa {' '.join(args)} was still running after {GENEROUS}s"
    return outcome["result"]


def skipped_lines(result) -> list[str]:
    return [line.strip() for line in result.stderr.splitlines() if "skipped" in line]


def headers_at_one_byte_a_second(connection) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    for byte in b"X-Padding: a\r\n" * ENDLESS:
        connection.sendall(bytes([byte]))
        time.sleep(1)


def headers_without_end(connection) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
    for number in range(ENDLESS):
        connection.sendall(b"X-Padding-%d: %s\r\n" % (number, b"a" * 200))


def chunks_without_end(connection) -> None:
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"<p>" + b"word " * 1000 + b"</p>"
    for _ in range(ENDLESS):
        connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def test_headers_that_trickle_are_cut_off_at_the_deadline(run, monkeypatch):
    monkeypatch.setenv("QA_FETCH_TIMEOUT", "2")
    with serve_raw(headers_at_one_byte_a_second) as base:
        result = finished(run, "ingest", base + "/x")

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = skipped_lines(result)
    assert line.startswith(f"skipped {base}/x") and "no complete reply within 2s" in line


def test_a_redirect_chain_shares_one_deadline(run, monkeypatch):
    """Each hop answers within the deadline; the chain as a whole does not. (The last reply is
    empty, so only the deadline, not a check between pieces of the body, can stop it.)"""
    monkeypatch.setenv("QA_FETCH_TIMEOUT", "2")
    with serve_news_site() as site:
        for hop in range(4):
            site.routes[f"/hop{hop}"] = Route(
                status=302, location=site.url(f"/hop{hop + 1}"), delay=1.5
            )
        site.routes["/hop4"] = Route(b"", delay=1.5)
        result = finished(run, "ingest", site.url("/hop0"))

    assert result.exit_code == 1, result.output
    (line,) = skipped_lines(result)
    assert "no complete reply within 2s" in line


def test_headers_that_never_end_are_refused_without_waiting_for_the_deadline(run, monkeypatch):
    monkeypatch.setenv("QA_FETCH_TIMEOUT", "600")
    with serve_raw(headers_without_end) as base:
        result = finished(run, "ingest", base + "/x")

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = skipped_lines(result)
    assert "headers" in line


@pytest.mark.parametrize("limit", ["0.05", "1"])
def test_a_chunked_reply_without_a_length_stops_at_the_size_limit(run, monkeypatch, limit):
    monkeypatch.setenv("QA_FETCH_TIMEOUT", "600")
    monkeypatch.setenv("QA_MAX_PAGE_MB", limit)
    with serve_raw(chunks_without_end) as base:
        result = finished(run, "ingest", base + "/x")

    assert result.exit_code == 1, result.output
    (line,) = skipped_lines(result)
    assert f"over the {limit} MB limit for a page (QA_MAX_PAGE_MB)" in line


def tls_records_at_one_byte_a_second(connection) -> None:
    # The header of a TLS record, then its body a byte at a time.
    connection.sendall(b"\x16\x03\x03\x40\x00")
    for _ in range(ENDLESS):
        connection.sendall(b"\x02")
        time.sleep(1)


def test_a_tls_handshake_that_trickles_is_cut_off_at_the_deadline(run, monkeypatch):
    monkeypatch.setenv("QA_FETCH_TIMEOUT", "2")
    with serve_raw(tls_records_at_one_byte_a_second) as base:
        url = base.replace("http://", "https://") + "/x"
        result = finished(run, "ingest", url)

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = skipped_lines(result)
    assert line.startswith(f"skipped {url}") and "no complete reply within 2s" in line
