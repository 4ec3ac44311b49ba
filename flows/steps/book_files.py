"""Whole-book deliverables built from the delivered chapter files: one M4B with chapter marks and
cover (Apple Books, Audiobookshelf), and optionally one MP3 with ID3 CHAP/CTOC frames.

Plain code. A whole-book file is rebuilt only when a chapter file, a title, the tags or the preset
changed (a hash of those is kept in the manifest), because encoding a whole book costs minutes.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

from flows.steps.export import file_sha256
from flows.steps.manifest import ChapterRecord
from ingest.model import Book
from mastering.book import write_book_mp3
from mastering.chapters_json import chapters_bytes
from mastering.files import write_bytes_atomic
from mastering.m4b import deliver_m4b
from mastering.presets import Preset
from mastering.qc import check_aac_format
from mastering.tags import Tags

log = logging.getLogger(__name__)

Kind = Literal["m4b", "mp3", "readalong"]


def book_tags(book: Book) -> Tags:
    m = book.meta
    return Tags(title=m.title, album=m.title, artist=m.author, narrator=m.narrator, year=m.year,
                language=m.language, cover=m.cover, cover_mime=m.cover_mime)


def length_groups(chapters: list[ChapterRecord], max_hours: float | None) -> list[list[ChapterRecord]]:
    """Chapters in order, grouped into files of at most `max_hours` (Apple Books: 23 hours per
    track), never splitting a chapter; one group when there is no limit or the book fits."""
    if max_hours is None:
        return [chapters]
    groups: list[list[ChapterRecord]] = [[]]
    length = 0.0
    for c in chapters:
        if groups[-1] and length + c.duration_s > max_hours * 3600:
            groups.append([])
            length = 0.0
        groups[-1].append(c)
        length += c.duration_s
    return groups


def book_file(book: Book, chapters: list[ChapterRecord], out: Path, preset: Preset, kind: Kind,
              previous: dict | None, part: tuple[int, int] | None = None) -> dict:
    """Write (or keep) the whole-book file of `kind` from the delivered chapters' records (`part`:
    (k, n) when the book is delivered as n files of whole chapters, `<slug>-part<k>.<kind>`).

    Returns its manifest entry: file, key, sha256 and the chapter marks (title, start_s, end_s)
    as written into the file, and the store's rules when the preset has them. Raises
    MasteringError / OutputError.
    """
    delivered = [f for c in chapters for f in c.delivered]
    if kind == "readalong":
        return _readalong(book, chapters, out, delivered, previous)
    files = [out / f["file"] for f in delivered]
    titles = [f["title"] for f in delivered]
    tags = book_tags(book)
    if part is not None:
        tags = replace(tags, title=f"{tags.title} ({part[0]}/{part[1]})", track=part[0], track_total=part[1])
    key = hashlib.sha256(json.dumps([kind, [f["sha256"] for f in delivered], titles, repr(tags),
                                     hashlib.sha256(book.meta.cover or b"").hexdigest(), repr(preset)],
                                    ensure_ascii=False).encode()).hexdigest()
    path = out / (f"{book.slug}.{kind}" if part is None else f"{book.slug}-part{part[0]}.{kind}")
    chapters_file = path.with_name(path.name + ".chapters.json") if kind == "m4b" else None
    if _unchanged(previous, key, path) and (chapters_file is None or chapters_file.is_file()):
        return previous  # type: ignore[return-value]
    qc = None
    if kind == "m4b":
        delivered_m4b = deliver_m4b(path, files, titles, tags, preset, work=out / ".work" / "tmp")
        marks = delivered_m4b.marks
        if delivered_m4b.peak_db is not None:
            qc = {"passed": delivered_m4b.passed, "peak_db": round(delivered_m4b.peak_db, 2),
                  "ceiling_db": delivered_m4b.ceiling_db,
                  "detail": f"decoded peak {delivered_m4b.peak_db:.2f} dB (ceiling {delivered_m4b.ceiling_db:g})"}
        if preset.aac_min_kbps is not None:  # a store's file rules (apple-books)
            rules = check_aac_format(path, preset)
            failed = [r for r in rules if not r.passed]
            base = qc or {"passed": True, "detail": ""}
            details = ([base["detail"]] if not base["passed"] else []) + [
                f"{r.rule} {r.value} (allowed {r.limit})" for r in failed]
            qc = {**base, "rules": [asdict(r) for r in rules], "passed": base["passed"] and not failed,
                  "detail": "; ".join(details) or base["detail"]}
    else:
        marks = write_book_mp3(path, files, titles, tags, preset)
    if chapters_file is not None:  # Podcasting 2.0 JSON chapters, for players that read them beside the M4B
        write_bytes_atomic(chapters_file, chapters_bytes(marks, title=book.meta.title, author=book.meta.author,
                                                         file_name=path.name))
    return {"file": path.name, "key": key, "sha256": file_sha256(path), "qc": qc,
            "chapters": [{"title": m.title, "start_s": round(m.start_s, 3), "end_s": round(m.end_s, 3)}
                         for m in marks]}


def _readalong(book: Book, chapters: list[ChapterRecord], out: Path, delivered: list[dict], previous: dict | None) -> dict:
    """The read-along EPUB (flows/steps/readalong.py), rebuilt when a chapter file or its sentence
    times changed."""
    from flows.steps.readalong import build_readalong

    path = out / f"{book.slug}-readalong.epub"
    key = hashlib.sha256(json.dumps(["readalong", [f["sha256"] for f in delivered],
                                     [c.spans or [p.get("spans") for p in c.parts] for c in chapters],
                                     file_sha256(Path(book.source)) if Path(book.source).is_file() else ""],
                                    ensure_ascii=False).encode()).hexdigest()
    if _unchanged(previous, key, path):
        return previous  # type: ignore[return-value]
    info = build_readalong(book, chapters, out, path, out / ".work" / "tmp")
    return {"file": path.name, "key": key, "sha256": file_sha256(path), "qc": None, "readalong": info}


def _unchanged(previous: dict | None, key: str, path: Path) -> bool:
    """Whether the previous run's whole-book file was made from the same inputs and is intact."""
    if previous and previous.get("key") == key and path.is_file() and file_sha256(path) == previous.get("sha256"):
        log.info("%s unchanged", path.name)
        return True
    return False
