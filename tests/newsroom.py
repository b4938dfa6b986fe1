"""A newsroom on the loopback news site: feeds of stories that are added and edited between
rounds, some feeds and pages with ETag or Last-Modified and some with neither, a robots.txt,
a feed that can start failing, and the OPML file a feed reader would export."""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape

from tests.news_site import NewsSite, Route

# How each feed (and its stories' pages) tells a client what it has seen already.
VALIDATORS = ("etag", "last-modified", "both", "none")
TOWNS = ["Aldmere", "Brackwater", "Corrin", "Dunhollow", "Eastfold", "Farrow", "Glenmarsh",
         "Harlow Cross", "Ivybridge", "Kestle"]  # fmt: skip
PROJECTS = ["a tram line", "a flood barrier", "a new library", "a solar farm", "a ferry pier",
            "a cycle bridge", "a hospital wing", "a water works", "a market hall"]  # fmt: skip
START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@dataclass
class Story:
    feed: str
    number: int
    paragraphs: int
    edition: int = 1
    updated: datetime = START
    # The folder of its page: the feed's own, unless given.
    folder: str | None = None

    @property
    def path(self) -> str:
        return f"/{self.folder or self.feed}/story-{self.number}"

    @property
    def title(self) -> str:
        town = TOWNS[self.number % len(TOWNS)]
        return f"{town} {self.feed} report number {self.number}"

    def html(self) -> str:
        town = TOWNS[self.number % len(TOWNS)]
        project = PROJECTS[(self.number // len(TOWNS)) % len(PROJECTS)]
        votes = 10 + self.number + 7 * (self.edition - 1)
        sentences = [
            f"The council of {town} voted {votes} to 4 on Tuesday to fund {project}, the "
            f"{self.feed} desk reports in story {self.number} of its series.",
            f"Officials in {town} said the work on {project} would start within "
            f"{self.number % 11 + 2} months and employ about {40 + self.number * 3} people.",
        ]
        if self.edition > 1:
            sentences.append(
                f"This story was corrected in edition {self.edition}: the vote was {votes} to 4."
            )
        body = "".join(f"<p>{escape(sentence)}</p>" for sentence in sentences)
        for extra in range(self.paragraphs):
            body += (
                f"<p>Residents of {town} raised point {extra + 1} about {project} at a public "
                f"meeting, asking how the {self.number * 1000 + extra} euro line of the budget "
                "would be spent and who would check the contractors' progress each quarter.</p>"
            )
        return (
            f"<html><head><title>{escape(self.title)}</title></head><body><article>"
            f"<h1>{escape(self.title)}</h1>{body}</article></body></html>"
        )


@dataclass
class Newsroom:
    """`feeds` names each feed with how it and its pages validate (one of VALIDATORS)."""

    site: NewsSite
    feeds: dict[str, str]
    stories: list[Story] = field(default_factory=list)
    paragraphs: int = 1
    failing: dict[str, Route] = field(default_factory=dict)
    clock: datetime = START

    @classmethod
    def open(
        cls, site: NewsSite, feeds: dict[str, str], per_feed: int, paragraphs: int = 1
    ) -> "Newsroom":
        room = cls(site, feeds, paragraphs=paragraphs)
        for feed in feeds:
            for _ in range(per_feed):
                room.add(feed)
        site.routes["/robots.txt"] = Route(
            b"User-agent: *\nDisallow: /private/\n", "text/plain; charset=utf-8"
        )
        room.publish()
        return room

    def feed_url(self, feed: str) -> str:
        return self.site.url(f"/{feed}/feed.xml")

    def feed_urls(self) -> list[str]:
        return [self.feed_url(feed) for feed in self.feeds]

    def page_urls(self) -> set[str]:
        return {self.site.url(story.path) for story in self.stories}

    def add(self, feed: str, folder: str | None = None) -> Story:
        """A new story at the top of `feed`, its page in the feed's folder or in `folder`."""
        self.clock += timedelta(minutes=1)
        number = sum(1 for story in self.stories if story.feed == feed) + 1
        story = Story(feed, number, self.paragraphs, updated=self.clock, folder=folder)
        self.stories.append(story)
        return story

    def edit(self, story: Story) -> None:
        self.clock += timedelta(minutes=1)
        story.edition += 1
        story.updated = self.clock

    def fail(self, feed: str, status: int = 503, retry_after: str | None = "120") -> None:
        headers = {"Retry-After": retry_after} if retry_after else {}
        self.failing[feed] = Route(b"Busy", "text/plain", status=status, headers=headers)
        self.publish()

    def recover(self, feed: str) -> None:
        self.failing.pop(feed, None)
        self.publish()

    def publish(self) -> None:
        """Serve every feed and page as they now are."""
        for feed, kind in self.feeds.items():
            stories = [story for story in self.stories if story.feed == feed]
            feed_xml = rss(self.site, feed, stories)
            newest = max(story.updated for story in stories)
            self.site.routes[f"/{feed}/feed.xml"] = self.failing.get(feed) or validated(
                feed_xml, "application/rss+xml", kind, newest
            )
            for story in stories:
                page = story.html().encode()
                self.site.routes[story.path] = validated(page, "text/html", kind, story.updated)

    def opml(self) -> str:
        outlines = "".join(
            f'<outline type="rss" text="{feed}" title="{feed}" xmlUrl="{escape(url)}"/>'
            for feed, url in zip(self.feeds, self.feed_urls(), strict=True)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head>'
            "<title>Subscriptions</title></head><body>"
            f'<outline text="News" title="News">{outlines}</outline></body></opml>'
        )


def validated(body: bytes, content_type: str, kind: str, updated: datetime) -> Route:
    """A route carrying the validators `kind` names (VALIDATORS)."""
    route = Route(body, f"{content_type}; charset=utf-8")
    if kind in ("etag", "both"):
        route.etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    if kind in ("last-modified", "both"):
        route.last_modified = format_datetime(updated, usegmt=True)
    return route


def rss(site: NewsSite, feed: str, stories: list[Story]) -> bytes:
    """An RSS feed whose items carry a GUID, a publication date and an atom:updated time."""
    items = "".join(
        f"<item><title>{escape(story.title)}</title><link>{site.url(story.path)}</link>"
        f'<guid isPermaLink="false">{feed}-{story.number}</guid>'
        f"<pubDate>{format_datetime(START + timedelta(days=story.number % 20))}</pubDate>"
        f"<atom:updated>{story.updated.isoformat().replace('+00:00', 'Z')}</atom:updated></item>"
        for story in reversed(stories)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>Loopback {feed}</title><link>{site.url('/')}</link>"
        f"<description>{feed}</description>{items}</channel></rss>"
    ).encode()
