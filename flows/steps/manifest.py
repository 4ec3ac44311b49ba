"""manifest.json: what an output folder holds, chapter by chapter — always the whole book.

Written atomically after every chapter that finishes (not once at the end), so a run killed at any
moment leaves a manifest of everything delivered so far and its resume re-exports nothing that is
done. Each chapter's entry is serialised once, when it changes, and the file is assembled from those
pieces: rewriting a 138-chapter manifest (3 MB of sentence timings) from scratch after every chapter
cost the main process O(chapters²) time and transient memory. Every chapter of the book has an entry: delivered ("ok"), "failed" (with the error), or
"pending" (never produced yet, e.g. after `rerun --chapters 3` on a fresh folder). Chapters a run
does not touch keep the entry an earlier run left.
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from ingest.model import Book
from mastering.files import write_bytes_atomic, write_json_atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
QC_FILE = "qc.json"
Status = Literal["ok", "failed", "pending"]


@dataclass
class ChapterRecord:
    """One chapter's entry: its delivered file(s), measures, QC, sentence timings and cost."""

    index: int  # 1-based track number
    title: str
    status: str = "ok"  # Status
    file: str = ""
    duration_s: float = 0.0
    sentences: int = 0
    synthesized: int = 0
    reused: int = 0
    retakes: int = 0
    clip_flags: list = field(default_factory=list)  # clip-QC problems left after re-takes
    parts: list = field(default_factory=list)  # when split for length: per-part file, measures, qc, spans
    qc: dict = field(default_factory=dict)  # QCReport.to_dict() of the delivered file
    export_key: str = ""  # hash of everything the MP3 is made from; unchanged → export skipped
    sha256: str = ""  # of the delivered MP3
    measures: dict = field(default_factory=dict)
    spans: list = field(default_factory=list)  # (start_s, end_s, text) per sentence
    error: str = ""
    timing: dict = field(default_factory=dict)  # wall seconds this run spent: synthesis_s, mastering_s

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ChapterRecord | None":
        """A record from a manifest entry; None when the entry is not one (a hand-edited file)."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None

    @property
    def delivered(self) -> list[dict]:
        """The (file, sha256, title) records this chapter delivered: its parts, or its one file."""
        return self.parts or [{"file": self.file, "sha256": self.sha256, "title": self.title}]


def read_manifest(out: Path) -> dict:
    """The manifest a previous run left in `out` (empty if none or unreadable)."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def previous_records(out: Path) -> dict[int, ChapterRecord]:
    """Chapter records of the previous manifest, by index (malformed entries skipped)."""
    chapters = read_manifest(out).get("chapters")
    records = {}
    for entry in chapters if isinstance(chapters, list) else []:
        record = ChapterRecord.from_dict(entry) if isinstance(entry, dict) else None
        if record is not None and isinstance(record.index, int):
            records[record.index] = record
    return records


class ManifestWriter:
    """Keeps manifest.json (and qc.json) of one run current: `record` each chapter as it finishes,
    `finish` once at the end. Thread-safe: chapters finish in task threads."""

    def __init__(self, out: Path, book: Book, header: dict, wanted: list[int]) -> None:
        self.out, self.book, self.header, self.wanted = out, book, header, wanted
        previous = previous_records(out)
        self.records: dict[int, ChapterRecord] = {}
        for i, chapter in enumerate(book.chapters, 1):
            record = previous.get(i)
            if record is None or record.title != chapter.title:
                record = ChapterRecord(index=i, title=chapter.title, status="pending")
            self.records[i] = record
        self.this_run: dict[int, ChapterRecord] = {}
        self.book_files: dict = read_manifest(out).get("book_files") or {}
        self.seconds: dict[str, float] = {}  # run-level timings the flow adds (front_end, wall)
        self._lock = threading.Lock()
        self._entries: dict[int, str] = {}  # chapter → its entry as indented JSON (see the module docstring)

    def record(self, record: ChapterRecord) -> None:
        """A chapter finished (delivered or failed): update and rewrite the manifest now."""
        with self._lock:
            self.records[record.index] = self.this_run[record.index] = record
            self._entries.pop(record.index, None)
            self._write_pieces()

    def finish(self, book_files: dict | None = None) -> dict:
        """The final manifest (whole-book files added), written; returned as a dict."""
        with self._lock:
            if book_files is not None:
                self.book_files = book_files
            return self._write()

    def snapshot(self) -> dict:
        """The whole manifest as a dict."""
        return self._summary([r.to_dict() for _, r in sorted(self.records.items())])

    def _summary(self, chapters: object) -> dict:
        """The manifest with `chapters` in its place; totals come from the records themselves."""
        records = [r for _, r in sorted(self.records.items())]
        run = [self.this_run[i] for i in self.wanted if i in self.this_run]
        ok = [r for r in records if r.status == "ok"]
        return {
            **self.header,
            "this_run": {"chapters": [r.index for r in run],
                         "synthesized": sum(r.synthesized for r in run),
                         "reused": sum(r.reused for r in run),
                         "failed": [r.index for r in run if r.status == "failed"],
                         "seconds": {**self.seconds,
                                     "synthesis": round(sum(r.timing.get("synthesis_s", 0.0) for r in run), 2),
                                     "mastering": round(sum(r.timing.get("mastering_s", 0.0) for r in run), 2)}},
            "chapters": chapters,
            "total": {
                "chapters": len(records),
                "delivered": len(ok),
                "failed": sum(r.status == "failed" for r in records),
                "pending": sum(r.status == "pending" for r in records),
                "duration_s": round(sum(r.duration_s for r in ok), 3),
                "sentences": sum(r.sentences for r in records),
                "synthesized": sum(r.synthesized for r in records),
                "reused": sum(r.reused for r in records),
                "retakes": sum(r.retakes for r in records),
            },
            "book_files": self.book_files,
            "notices": list(self.book.notices),  # what the reader left out (see ingest.model.Book)
        }

    def text(self) -> str:
        """manifest.json's text — the same as `json.dumps(self.snapshot(), indent=2)` — built from
        each chapter's entry, serialised once per change."""
        for i, r in self.records.items():
            if i not in self._entries:
                entry = json.dumps(r.to_dict(), ensure_ascii=False, indent=2, allow_nan=False)
                # Raw newlines never occur inside JSON strings, so this only indents the lines.
                self._entries[i] = "\n".join("    " + line for line in entry.split("\n"))
        mark = f"chapters-{uuid.uuid4().hex}"
        skeleton = json.dumps(self._summary(mark), ensure_ascii=False, indent=2, allow_nan=False)
        entries = ",\n".join(self._entries[i] for i in sorted(self.records))
        return skeleton.replace(json.dumps(mark), f"[\n{entries}\n  ]" if entries else "[]", 1) + "\n"

    def _write_pieces(self) -> None:
        write_bytes_atomic(self.out / MANIFEST, self.text().encode("utf-8"))
        write_json_atomic(self.out / QC_FILE, self._qc())

    def _qc(self) -> dict:
        return {"preset": self.header.get("preset"),
                "chapters": [{"index": r.index, "file": r.file, **(r.qc or {})}
                             for _, r in sorted(self.records.items()) if r.status == "ok"]}

    def _write(self) -> dict:
        manifest = self.snapshot()
        write_json_atomic(self.out / MANIFEST, manifest)
        write_json_atomic(self.out / QC_FILE, self._qc())
        return manifest
