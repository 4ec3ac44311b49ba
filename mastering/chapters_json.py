"""Podcasting 2.0 JSON chapters (`application/json+chapters`, spec version 1.2.0).

Players that read the `<podcast:chapters>` tag of a feed (Podcast Addict, Fountain, Podverse, ...)
show these instead of, or beside, the ID3 CHAP frames in the MP3; some audiobook players read the
same file beside an M4B. Times come from the delivered file's chapter marks (the clip positions).
"""
from __future__ import annotations

import json
import math
from typing import Sequence

from .errors import MasteringError
from .tags import ChapterMark

MIME = "application/json+chapters"
VERSION = "1.2.0"


def chapters_document(marks: Sequence[ChapterMark], title: str = "", author: str = "", file_name: str = "",
                      podcast_name: str = "") -> dict:
    """The JSON chapters document for `marks` (start/end seconds, title): times to the millisecond."""
    doc: dict = {"version": VERSION}
    for key, value in (("title", title), ("author", author), ("podcastName", podcast_name), ("fileName", file_name)):
        if value:
            doc[key] = value
    doc["chapters"] = [{"startTime": round(m.start_s, 3), "endTime": round(m.end_s, 3), "title": m.title}
                       for m in marks]
    return doc


def chapters_bytes(marks: Sequence[ChapterMark], **fields: str) -> bytes:
    return (json.dumps(chapters_document(marks, **fields), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def check_chapters(doc: object, duration_s: float | None = None) -> None:
    """Check a parsed chapters document against the 1.2.0 fields: `version`, a non-empty
    `chapters` list, each with a numeric `startTime` (ascending, ≥ 0, inside the audio) and a
    title; optional `endTime` after its start. Raises MasteringError naming the first problem."""
    def bad(problem: str) -> MasteringError:
        return MasteringError(f"JSON chapters: {problem}")

    if not isinstance(doc, dict) or not isinstance(doc.get("version"), str):
        raise bad("the document needs a \"version\" string")
    chapters = doc.get("chapters")
    if not isinstance(chapters, list) or not chapters:
        raise bad("\"chapters\" must be a non-empty list")
    last = -1.0
    for n, ch in enumerate(chapters, 1):
        start = ch.get("startTime") if isinstance(ch, dict) else None
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not math.isfinite(start) or start < 0:
            raise bad(f"chapter {n} has no valid startTime")
        if start <= last:
            raise bad(f"chapter {n} starts at {start} s, not after chapter {n - 1} ({last} s)")
        if duration_s is not None and start >= duration_s:
            raise bad(f"chapter {n} starts at {start} s, after the audio ends ({duration_s:.3f} s)")
        end = ch.get("endTime")
        if end is not None and (not isinstance(end, (int, float)) or end <= start):
            raise bad(f"chapter {n} ends ({end}) before it starts ({start})")
        if not isinstance(ch.get("title", ""), str):
            raise bad(f"chapter {n} title must be text")
        last = float(start)
