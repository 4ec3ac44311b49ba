"""The podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 namespaces, built with feedgen.

Plain code (no Prefect), so the feed can be rebuilt and tested on its own. What apps check, and why
each field is filled the way it is:
- every item has an enclosure whose `length` is the file's real byte size and whose `type` is its
  MIME type (players pre-allocate and some directories reject length 0);
- `guid` is an opaque id (isPermaLink="false") that the caller keeps stable across rebuilds and
  re-productions, so apps never show a corrected episode twice;
- `itunes:duration` is whole seconds (Apple's recommended form);
- `podcast:transcript` links the SRT/VTT files, `podcast:guid` names the show by the namespace's
  UUIDv5 rule (feed URL without scheme and trailing slashes).
The XML is parsed back before it is written, and written atomically: a client polling the feed
never sees half a file.
"""
from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from ingest.errors import OutputError
from mastering.chapters_json import MIME as CHAPTERS_MIME
from mastering.files import write_bytes_atomic

log = logging.getLogger(__name__)

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
# The Podcasting 2.0 namespace's UUIDv5 namespace for podcast:guid (fixed by the spec).
_PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

TRANSCRIPT_MIME = {".vtt": "text/vtt", ".srt": "application/x-subrip"}
AUDIO_MIME = {".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".m4b": "audio/mp4"}


@dataclass(frozen=True)
class Transcript:
    """A transcript or captions file published beside an episode."""

    url: str
    mime: str  # text/vtt | application/x-subrip
    language: str = ""


@dataclass(frozen=True)
class FeedEpisode:
    """One <item>: everything the feed says about a produced episode."""

    guid: str
    title: str
    summary: str
    published: datetime  # timezone-aware
    audio_url: str
    audio_bytes: int
    duration_s: float
    number: int | None = None
    audio_mime: str = "audio/mpeg"
    transcripts: tuple[Transcript, ...] = ()
    chapters_url: str = ""  # Podcasting 2.0 JSON chapters


@dataclass(frozen=True)
class FeedChannel:
    """The show: what the <channel> says about itself."""

    title: str
    description: str
    feed_url: str  # where feed.xml is published (atom:link rel="self")
    link: str  # the show's website
    author: str = ""
    language: str = "en"
    image_url: str = ""
    email: str = ""
    category: str = ""
    explicit: bool = False


def public_url(base_url: str, name: str) -> str:
    """`name` (a file in the published folder) under `base_url`, percent-encoded."""
    return base_url.rstrip("/") + "/" + quote(name)


def podcast_guid(feed_url: str) -> str:
    """The show's podcast:guid: UUIDv5 of the feed URL without its scheme and trailing slashes."""
    bare = feed_url.split("://", 1)[-1].rstrip("/")
    return str(uuid.uuid5(_PODCAST_GUID_NAMESPACE, bare))


def new_episode_guid(feed_url: str, key: str) -> str:
    """A fresh episode GUID derived from the feed and the script's key; callers store it so it
    stays the same even if the feed later moves."""
    return str(uuid.uuid5(uuid.UUID(podcast_guid(feed_url)), key))


class _PodcastIndexFeed(BaseExtension):
    """Channel part of the Podcasting 2.0 namespace (feedgen has only the iTunes one)."""

    def __init__(self) -> None:
        self._guid = ""

    def guid(self, value: str) -> None:
        self._guid = value

    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS}

    def extend_rss(self, rss_feed):  # lxml element of <rss>
        channel = rss_feed[0]
        if self._guid:
            etree.SubElement(channel, f"{{{PODCAST_NS}}}guid").text = self._guid
        return rss_feed


class _PodcastIndexEntry(BaseEntryExtension):
    """Item part of the Podcasting 2.0 namespace: transcripts and JSON chapters."""

    def __init__(self) -> None:
        self._transcripts: list[Transcript] = []
        self._chapters = ""

    def transcripts(self, values: Sequence[Transcript]) -> None:
        self._transcripts = list(values)

    def chapters(self, url: str) -> None:
        self._chapters = url

    def extend_rss(self, entry):  # lxml element of <item>
        if self._chapters:
            etree.SubElement(entry, f"{{{PODCAST_NS}}}chapters", url=self._chapters, type=CHAPTERS_MIME)
        for t in self._transcripts:
            el = etree.SubElement(entry, f"{{{PODCAST_NS}}}transcript", url=t.url, type=t.mime)
            if t.language:
                el.set("language", t.language)
            if t.mime in ("text/vtt", "application/x-subrip"):
                el.set("rel", "captions")  # timed files: apps may show them as captions
        return entry


def build_feed(channel: FeedChannel, episodes: Sequence[FeedEpisode],
               built: datetime | None = None) -> bytes:
    """The RSS document for `channel` with `episodes`, newest first, as UTF-8 bytes.

    `built` is the lastBuildDate (default: the newest episode's date, so an unchanged show
    rebuilds to identical bytes). Raises OutputError when feedgen rejects a value (for example
    an iTunes category Apple does not list).
    """
    fg = FeedGenerator()
    fg.load_extension("podcast")
    fg.register_extension("podcastindex", _PodcastIndexFeed, _PodcastIndexEntry)
    ordered = sorted(episodes, key=lambda e: (e.published, e.number or 0), reverse=True)
    try:
        fg.title(channel.title)
        fg.description(channel.description)
        fg.link(href=channel.feed_url, rel="self")  # feedgen: set before "alternate", which wins
        fg.link(href=channel.link, rel="alternate")
        fg.language(channel.language)
        fg.generator("bookcast")
        if channel.author:
            fg.podcast.itunes_author(channel.author)
        if channel.image_url:
            fg.image(url=channel.image_url, title=channel.title, link=channel.link)
            fg.podcast.itunes_image(channel.image_url)
        if channel.category:
            fg.podcast.itunes_category(channel.category)
        if channel.email:
            fg.podcast.itunes_owner(name=channel.author or channel.title, email=channel.email)
        fg.podcast.itunes_explicit("yes" if channel.explicit else "no")
        fg.podcast.itunes_summary(channel.description)
        fg.podcast.itunes_type("episodic")
        fg.podcastindex.guid(podcast_guid(channel.feed_url))
        stamp = built or (ordered[0].published if ordered else datetime(1970, 1, 1, tzinfo=timezone.utc))
        fg.lastBuildDate(stamp)
        for ep in ordered:
            _add_item(fg, ep)
        data = fg.rss_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    except ValueError as exc:
        raise OutputError(f"invalid feed value ({exc})", channel.feed_url) from exc
    return data


def _add_item(fg: FeedGenerator, ep: FeedEpisode) -> None:
    fe = fg.add_entry(order="append")
    fe.guid(ep.guid, permalink=False)
    fe.title(ep.title)
    fe.description(ep.summary or ep.title)
    fe.pubDate(ep.published)
    fe.enclosure(ep.audio_url, str(ep.audio_bytes), ep.audio_mime)
    fe.podcast.itunes_duration(max(1, int(round(ep.duration_s))))
    fe.podcast.itunes_episode_type("full")
    if ep.number is not None:
        fe.podcast.itunes_episode(ep.number)
    if ep.summary:
        fe.podcast.itunes_summary(ep.summary)
    fe.podcastindex.transcripts(ep.transcripts)
    fe.podcastindex.chapters(ep.chapters_url)


def check_feed(data: bytes, expected_items: int, where: str | Path) -> None:
    """Parse the feed back as XML and check its shape. Raises OutputError naming `where`."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OutputError(f"generated feed is not well-formed XML ({exc})", where) from exc
    channel = root.find("channel")
    if root.tag != "rss" or root.get("version") != "2.0" or channel is None:
        raise OutputError("generated feed is not an RSS 2.0 document", where)
    items = channel.findall("item")
    if len(items) != expected_items:
        raise OutputError(f"generated feed has {len(items)} items, expected {expected_items}", where)
    for item in items:
        enc = item.find("enclosure")
        if enc is None or not enc.get("length", "").isdigit() or int(enc.get("length", "0")) <= 0:
            raise OutputError(f"item {item.findtext('title')!r} has no valid enclosure", where)


def write_feed(path: str | Path, channel: FeedChannel, episodes: Sequence[FeedEpisode],
               built: datetime | None = None) -> Path:
    """Build, check and atomically write the feed. Raises OutputError."""
    data = build_feed(channel, episodes, built)
    check_feed(data, len(episodes), path)
    write_bytes_atomic(path, data)
    log.info("wrote %s (%d episodes)", path, len(episodes))
    return Path(path)
