"""Whole-book deliverables built from the delivered chapter files: one M4B with chapter marks and
cover (Apple Books, Audiobookshelf), and optionally one MP3 with ID3 CHAP/CTOC frames.

Plain code. A whole-book file is rebuilt only when a chapter file, a title, the tags or the preset
changed (a hash of those is kept in the manifest), because encoding a whole book costs minutes.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Literal

from flows.steps.export import file_sha256
from flows.steps.manifest import ChapterRecord
from ingest.model import Book
from mastering.book import write_book_mp3
from mastering.m4b import deliver_m4b
from mastering.presets import Preset
from mastering.tags import Tags

log = logging.getLogger(__name__)

Kind = Literal["m4b", "mp3"]


def book_tags(book: Book) -> Tags:
    m = book.meta
    return Tags(title=m.title, album=m.title, artist=m.author, narrator=m.narrator, year=m.year,
                language=m.language, cover=m.cover, cover_mime=m.cover_mime)


def book_file(book: Book, chapters: list[ChapterRecord], out: Path, preset: Preset, kind: Kind,
              previous: dict | None) -> dict:
    """Write (or keep) the whole-book file of `kind` from the delivered chapters' records.

    Returns its manifest entry: file, key, sha256 and the chapter marks (title, start_s, end_s)
    as written into the file. Raises MasteringError / OutputError.
    """
    delivered = [f for c in chapters for f in c.delivered]
    files = [out / f["file"] for f in delivered]
    titles = [f["title"] for f in delivered]
    tags = book_tags(book)
    key = hashlib.sha256(json.dumps([kind, [f["sha256"] for f in delivered], titles, repr(tags),
                                     hashlib.sha256(book.meta.cover or b"").hexdigest(), repr(preset)],
                                    ensure_ascii=False).encode()).hexdigest()
    path = out / f"{book.slug}.{kind}"
    if previous and previous.get("key") == key and path.is_file() and file_sha256(path) == previous.get("sha256"):
        log.info("%s unchanged", path.name)
        return previous
    qc = None
    if kind == "m4b":
        delivered_m4b = deliver_m4b(path, files, titles, tags, preset, work=out / ".work" / "tmp")
        marks = delivered_m4b.marks
        if delivered_m4b.peak_db is not None:
            qc = {"passed": delivered_m4b.passed, "peak_db": round(delivered_m4b.peak_db, 2),
                  "ceiling_db": delivered_m4b.ceiling_db,
                  "detail": f"decoded peak {delivered_m4b.peak_db:.2f} dB (ceiling {delivered_m4b.ceiling_db:g})"}
    else:
        marks = write_book_mp3(path, files, titles, tags, preset)
    return {"file": path.name, "key": key, "sha256": file_sha256(path), "qc": qc,
            "chapters": [{"title": m.title, "start_s": round(m.start_s, 3), "end_s": round(m.end_s, 3)}
                         for m in marks]}
