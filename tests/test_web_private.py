"""Links in feeds and redirects reach only public addresses or the feed's own host, unless
QA_FETCH_ALLOW_PRIVATE says otherwise; what the user types is fetched as asked."""

import json

import pytest

from qa.fetch_guard import address_kind
from tests.news_site import Route, rss, serve_news_site

STORY = """<html><body><div class="content">
<p>The harbour authority in Port Elspeth said on Tuesday that the new ferry terminal will open
in the spring, two years later than planned, after a dispute over the dredging contract.</p>
<p>Officials said the terminal would handle up to 40 sailings a day once both berths are in
service, and that fares would not rise to cover the delay.</p>
</div></body></html>"""
ADMIN_PAGE = """<html><body><div class="content">
<p>INTERNAL ADMIN PAGE. The database password for the billing service is kept in this panel,
and the list of staff accounts below may be changed by any operator with access.</p>
<p>Operators must not share this address outside the building under any circumstances.</p>
</div></body></html>"""


@pytest.fixture
def public():
    """The site the user names on the command line."""
    with serve_news_site() as site:
        yield site


@pytest.fixture
def internal():
    """Another service on the same machine, on another port."""
    with serve_news_site() as site:
        site.page("/admin", ADMIN_PAGE)
        yield site


def ingested_urls(run) -> set[str]:
    listed = run("sources", "--json")
    return (
        {record["url"] for record in json.loads(listed.stdout)} if listed.exit_code == 0 else set()
    )


def refusal(result, url: str) -> str:
    (line,) = [
        line.strip()
        for line in result.stderr.splitlines()
        if line.strip().startswith(f"skipped {url}")
    ]
    return line


def test_a_feed_entry_pointing_at_another_local_service_is_not_fetched(run, public, internal):
    public.routes["/feed.xml"] = Route(
        rss([{"link": internal.url("/admin")}]), "application/rss+xml"
    )

    result = run("ingest", public.url("/feed.xml"))

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = refusal(result, internal.url("/admin"))
    assert "loopback" in line and "QA_FETCH_ALLOW_PRIVATE" in line
    assert internal.requests == []


def test_a_redirect_to_another_local_service_is_not_followed(run, public, internal):
    public.routes["/story"] = Route(status=302, location=internal.url("/admin"))

    result = run("ingest", public.url("/story"))

    assert result.exit_code == 1, result.output
    line = refusal(result, public.url("/story"))
    assert "loopback" in line and "QA_FETCH_ALLOW_PRIVATE" in line
    assert internal.requests == []


def test_a_host_name_is_checked_by_the_addresses_it_resolves_to(run, public, internal):
    admin = internal.url("/admin").replace("127.0.0.1", "localhost")
    public.routes["/feed.xml"] = Route(rss([{"link": admin}]), "application/rss+xml")

    result = run("ingest", public.url("/feed.xml"))

    assert result.exit_code == 1, result.output
    assert "QA_FETCH_ALLOW_PRIVATE" in refusal(result, admin)
    assert internal.requests == []


def test_allowing_private_addresses_fetches_entries_and_redirects_to_them(
    run, public, internal, monkeypatch
):
    monkeypatch.setenv("QA_FETCH_ALLOW_PRIVATE", "1")
    public.routes["/feed.xml"] = Route(
        rss([{"link": internal.url("/admin")}]), "application/rss+xml"
    )
    public.routes["/story"] = Route(status=302, location=internal.url("/admin?from=story"))
    internal.page("/admin?from=story", ADMIN_PAGE.replace("billing", "payroll"))

    result = run("ingest", public.url("/feed.xml"), public.url("/story"))

    assert result.exit_code == 0, result.output
    assert "2 added" in result.stderr
    assert ingested_urls(run) == {internal.url("/admin"), internal.url("/admin?from=story")}


def test_entries_and_redirects_on_the_feeds_own_host_and_what_the_user_types_are_fetched(
    run, public, internal
):
    public.page("/local/ferry", STORY)
    public.routes["/moved"] = Route(status=301, location=public.url("/local/ferry"))
    public.routes["/feed.xml"] = Route(rss([{"link": public.url("/moved")}]), "application/rss+xml")

    result = run("ingest", public.url("/feed.xml"), internal.url("/admin"))

    assert result.exit_code == 0, result.output
    assert "2 added" in result.stderr
    assert ingested_urls(run) == {public.url("/local/ferry"), internal.url("/admin")}


@pytest.mark.parametrize(
    ("link", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://[::]:8080/", "unspecified"),
        ("http://[::1]:8080/admin", "loopback"),
        ("http://[::ffff:127.0.0.1]:8080/admin", "loopback"),
        ("http://10.0.0.7/admin", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://[fe80::1]/", "link-local"),
    ],
)
def test_links_to_non_public_addresses_are_refused_by_kind(run, public, link, kind):
    public.routes["/feed.xml"] = Route(rss([{"link": link}]), "application/rss+xml")

    result = run("ingest", public.url("/feed.xml"))

    assert result.exit_code == 1, result.output
    line = refusal(result, link)
    assert f"a {kind} address" in line and "QA_FETCH_ALLOW_PRIVATE" in line


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("172.16.4.1", "private"),
        ("100.64.0.1", "non-public"),
        ("169.254.10.10", "link-local"),
        ("fc00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
    ],
)
def test_which_addresses_count_as_public(address, kind):
    assert address_kind(address) == kind
