"""Export of one chapter: stitch its clips (each read once), master, encode and tag its MP3 (or its
parts, when longer than the preset allows per file), write SRT/VTT transcripts and check the
delivered file against every preset rule.

Memory is bounded by design: the chapter streams through a spill in the work folder, and the
number of chapters mastered at once is bounded by a memory budget (`export_slots`).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from flows.steps.manifest import ChapterRecord
from flows.steps.synthesis import clip_rate, iter_clips
from ingest.model import Book, slugify
from ingest.script import Line
from mastering.export import deliver_mp3
from mastering.loudness import Measures
from mastering.presets import Preset
from mastering.qc import QCReport, check_mp3_format, check_rules
from mastering.split import split_points
from mastering.stitch import Assembly, assemble
from mastering.tags import ChapterMark, Tags
from mastering.transcripts import cues, write_srt, write_vtt
from synth.cache import ClipCache

log = logging.getLogger(__name__)


def pauses_after(lines: list[Line], preset: Preset) -> list[float]:
    return [line.pause_s if line.pause_s is not None else preset.pause_for(line.boundary) for line in lines]


def stitch(lines: list[Line], cache: ClipCache, keys: Sequence[str], preset: Preset,
           work: Path | None = None) -> Assembly:
    """The clips in script order with the preset's pauses, stitched into a spill under `work`
    (one engine, one rate; each clip read once). Close the result when delivered."""
    return assemble(iter_clips(cache, keys), clip_rate(cache, keys, preset), pauses_after(lines, preset), preset, work)


EXPORT_MEMORY_MB = 200  # one chapter export's peak, any length (54-min chapter measured: ~170 MB)


def export_width() -> int:
    """How many chapters this process masters at once: bounded by memory (BOOKCAST_MEMORY_MB,
    default 512, over EXPORT_MEMORY_MB each) and by CPU cores (mastering is CPU-bound), never by
    the task runner's thread count."""
    try:
        budget = int(os.environ.get("BOOKCAST_MEMORY_MB", "512"))
    except ValueError:
        budget = 512
    return max(1, min(os.cpu_count() or 1, budget // EXPORT_MEMORY_MB))


@functools.lru_cache(maxsize=1)
def export_slots() -> threading.BoundedSemaphore:
    """The process-wide semaphore of `export_width` slots: every flow run in this process (and
    every caller of `export`) shares the budget."""
    return threading.BoundedSemaphore(export_width())


def chapter_file_name(index: int, title: str, total: int) -> str:
    width = max(2, len(str(total)))
    return f"{index:0{width}d}-{slugify(title) or 'chapter'}.mp3"


EXPORT_REVISION = 2  # bump when stitching/mastering/encoding changes what the same inputs produce


def chapter_tags(book: Book, index: int, total: int) -> Tags:
    meta = book.meta
    return Tags(title=book.chapters[index - 1].title, album=meta.title, artist=meta.author,
                narrator=meta.narrator, track=index, track_total=total, year=meta.year,
                language=meta.language, cover=meta.cover, cover_mime=meta.cover_mime)


def export_key(book: Book, index: int, total: int, lines: list[Line], clip_keys: tuple[str, ...],
               preset: Preset) -> str:
    """Hash of every input of a chapter's MP3: clips, pauses, preset, tags, cover, file name."""
    cover = hashlib.sha256(book.meta.cover or b"").hexdigest()
    payload = json.dumps([EXPORT_REVISION, list(clip_keys), pauses_after(lines, preset), repr(preset),
                          repr(chapter_tags(book, index, total)), cover,
                          chapter_file_name(index, book.chapters[index - 1].title, total)], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def reusable(previous: ChapterRecord | None, key: str, out_dir: Path) -> bool:
    """True if the previous run delivered this exact chapter and its files are intact."""
    if previous is None or previous.status != "ok" or previous.export_key != key:
        return False
    try:
        return all((out_dir / f["file"]).is_file() and file_sha256(out_dir / f["file"]) == f["sha256"]
                   for f in previous.delivered)
    except (OSError, KeyError, TypeError):
        return False


def part_ranges(assembly: Assembly, lines: list[Line], preset: Preset) -> list[tuple[int, int]]:
    """Line ranges of the files this chapter becomes: one, or several cut at paragraph ends when
    it is longer than the preset allows per file (ACX: 120 minutes)."""
    if preset.max_minutes is None or assembly.duration <= preset.max_minutes * 60:
        return [(0, len(lines))]
    cuts = split_points(assembly.spans, [line.boundary != "sentence" for line in lines], preset.max_minutes * 60,
                        preset.head_room_tone_s, preset.tail_room_tone_s)
    bounds = [0, *cuts, len(lines)]
    return list(zip(bounds[:-1], bounds[1:]))


def export(book: Book, index: int, total: int, lines: list[Line], cache: ClipCache, keys: Sequence[str],
           preset: Preset, out_dir: Path, key: str = "", work: Path | None = None) -> ChapterRecord:
    """Stitch, master and write one chapter's MP3 (or its parts) with transcripts; returns its
    measured summary. Streams: each clip is read once, the chapter spills to `work` (default
    `<out_dir>/.work/tmp`) and is mastered and encoded block by block. Callers bound how many run
    at once (`mastering_pool`)."""
    work = work or out_dir / ".work" / "tmp"
    cpu = time.process_time()
    chapter = book.chapters[index - 1]
    texts = [line.sentence.text for line in lines]
    whole = stitch(lines, cache, keys, preset, work)
    try:
        ranges = part_ranges(whole, lines, preset)
        name = chapter_file_name(index, chapter.title, total)
        parts = []
        for k, (a, b) in enumerate(ranges, start=1):
            single = len(ranges) == 1
            assembly = whole if single else whole.part(a, b)
            path = out_dir / (name if single else name.replace(".mp3", f"-part{k}.mp3"))
            tags = chapter_tags(book, index, total)
            if not single:
                tags = replace(tags, title=f"{chapter.title} ({k}/{len(ranges)})")
            parts.append(deliver_part(path, assembly, texts[a:b], preset, tags, (), work))
    finally:
        whole.close()
    first = parts[0]
    qc = first["qc"] if len(parts) == 1 else {
        "passed": all(p["qc"]["passed"] for p in parts),
        "rules": [dict(r, rule=f"part{k}:{r['rule']}") for k, p in enumerate(parts, 1) for r in p["qc"]["rules"]]}
    return ChapterRecord(
        index=index, title=chapter.title, file=first["file"], sha256=first["sha256"],
        duration_s=round(sum(p["duration_s"] for p in parts), 3), sentences=len(lines),
        measures=first["measures"], qc=qc, export_key=key, spans=first["spans"] if len(parts) == 1 else [],
        parts=parts if len(parts) > 1 else [], timing={"mastering_cpu_s": round(time.process_time() - cpu, 2)},
    )


def deliver_part(path: Path, assembly: Assembly, texts: Sequence[str], preset: Preset, tags: Tags,
                 marks: Sequence[ChapterMark], work: Path) -> dict:
    """One delivered file of stitched narration (a chapter, a part of one, a podcast episode):
    mastered MP3 with room tone and tags (and chapter `marks`), SRT and VTT transcripts timed by the
    clips, and every preset rule checked on the decoded file. Returns its manifest entry."""
    _, measures = deliver_mp3(path, assembly.signal, assembly.sample_rate, preset, tags, marks,
                              room_tone=True, work=work)
    items = cues(assembly.spans, texts)
    write_srt(path.with_suffix(".srt"), items)
    write_vtt(path.with_suffix(".vtt"), items)
    return {"file": path.name, "title": tags.title, "duration_s": round(measures.duration_s, 3),
            "measures": measures.to_dict(), "qc": delivery_qc(path, measures, assembly, preset).to_dict(),
            "sha256": file_sha256(path),
            "spans": [(round(s, 3), round(e, 3), t) for (s, e), t in zip(assembly.spans, texts)]}


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (a whole-book file can be gigabytes)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def delivery_qc(path: Path, measures: Measures, assembly: Assembly, preset: Preset) -> QCReport:
    """Every preset rule on the delivered file: levels from the decoded MP3 (as measured by
    deliver_mp3), room tone at head and tail from the clip positions, and the MP3 format."""
    head = assembly.spans[0][0] if assembly.spans else 0.0
    tail = assembly.duration - assembly.spans[-1][1] if assembly.spans else 0.0
    rules = tuple(check_rules(measures, preset, head, tail)) + tuple(check_mp3_format(path, preset))
    return QCReport(str(path), preset.name, measures, head, tail, rules)

