"""Plain (Prefect-free) steps of one chapter: script it, synthesize what the cache lacks, export it.

The Prefect tasks in flows/tasks.py wrap these with retries, names and logs; keeping them plain
makes every step testable on its own and reusable by the rerun and podcast flows.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ingest.errors import SynthesisError
from ingest.frontend import config_for
from ingest.model import Book, Chapter, slugify
from ingest.script import Line, chapter_script
from ingest.segment import segment
from mastering.clipqc import clip_stats
from mastering.credits import closing_credits, opening_credits
from mastering.export import deliver_mp3
from mastering.loudness import Measures
from mastering.presets import Preset
from mastering.qc import QCReport, check_mp3_format, check_rules
from mastering.split import split_points
from mastering.stitch import Assembly, assemble
from mastering.tags import Tags
from mastering.transcripts import cues, write_srt, write_vtt
from synth.cache import ClipCache, clip_key
from synth.jobs import EngineSpec, bucket_batches
from synth.pool import Pool

log = logging.getLogger(__name__)


@dataclass
class ChapterResult:
    index: int  # 1-based track number
    title: str
    status: str = "ok"  # "ok" | "failed"
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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ChapterClips:
    """What synthesis hands to export: cache keys in script order, and what it cost."""

    keys: tuple[str, ...]
    synthesized: int
    reused: int
    audio_s: float
    retakes: int = 0
    flags: tuple[dict, ...] = ()  # clip-QC flags no re-take could fix


def script(chapter: Chapter, language: str, engine: str = "espeak", index: int | None = None,
           keep_words: frozenset[str] = frozenset()) -> list[Line]:
    """The chapter's lines, cut to the sentence lengths `engine` is reliable on; `keep_words` (from a
    pronunciation lexicon) are left for the lexicon instead of being normalised or spelled."""
    config = config_for(engine)
    if keep_words:
        config = replace(config, keep_words=frozenset(keep_words))
    where = f"chapter {index} ({chapter.title})" if index else f"chapter {chapter.title!r}"
    return chapter_script(chapter, "zh" if language.startswith("zh") else "en", config, where)


def add_credits(lines: list[Line], book: Book, index: int, total: int, engine: str) -> list[Line]:
    """Opening credits before chapter 1 and closing credits ("The End") after the last chapter,
    spoken from the book's metadata, as audiobook stores require."""
    meta = book.meta
    language = "zh" if meta.language.startswith("zh") else "en"
    config = config_for(engine)

    def spoken(text: str, boundary: str) -> list[Line]:
        sentences = segment(text, language, where="credits", config=config)
        return [Line(s, "sentence" if i < len(sentences) - 1 else boundary)  # type: ignore[arg-type]
                for i, s in enumerate(sentences)]

    out = list(lines)
    if index == 1:
        out = spoken(opening_credits(meta.title, meta.author, meta.narrator, language), "heading") + out
    if index == total:
        if out:
            out[-1] = replace(out[-1], boundary="section_break")
        out += spoken(closing_credits(meta.title, meta.author, meta.narrator, language), "paragraph")
    return out


def synthesize(pool: Pool, spec: EngineSpec, fingerprint: str, cache: ClipCache, lines: list[Line], seed: int,
               on_batch: Callable[[int, float], None] = lambda n, s: None) -> ChapterClips:
    """Synthesize every sentence of `lines` missing from `cache`, in length-bucketed batches.

    Finished batches are stored as they arrive, so a failure or a kill loses only unfinished ones.
    Raises SynthesisError naming the first failed batch's text.
    """
    keys = [clip_key(line.sentence, fingerprint, seed) for line in lines]
    missing: dict[str, object] = {}
    for key, line in zip(keys, lines):
        if key not in missing and not cache.has(key):
            missing[key] = line.sentence
    on_batch(len(lines) - len(missing), 0.0)  # reused sentences count as done at once
    pending = {}
    for batch in bucket_batches(list(missing.items()), spec.batch_size):
        batch_keys = [k for k, _ in batch]
        pending[pool.submit(spec, batch_keys, [s for _, s in batch], seed, clip_stats)] = batch
    batches = len(pending)
    audio_s = 0.0
    errors = []
    while pending:  # each result is stored and dropped as it arrives: a chapter's audio never piles up
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            batch = pending.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # a worker's failure, whatever its type; reported below
                errors.append(f"{type(exc).__name__}: {exc} (batch starting {batch[0][1].text[:40]!r})")
                continue
            if result.fingerprint != fingerprint:  # a worker with another voice must not fill this cache
                errors.append(f"worker {result.worker} synthesizes with {result.fingerprint[:16]}…, "
                              f"not the run's voice {fingerprint[:16]}…")
                continue
            seconds = sum(store(cache, key, sentence, result, i) for i, (key, sentence) in enumerate(batch))
            audio_s += seconds
            on_batch(len(batch), seconds)
    if errors:
        raise SynthesisError(f"{len(errors)} of {batches} batches failed: {errors[0]}")
    return ChapterClips(tuple(keys), len(missing), len(lines) - len(missing), audio_s)


def store(cache: ClipCache, key: str, sentence, result, i: int, **extra: object) -> float:
    """Put clip `i` of a batch result into the cache with its QC stats; returns its duration."""
    meta = {"fingerprint": result.fingerprint, "worker": result.worker, **extra}
    if result.stats:
        meta["stats"] = result.stats[i]
    return cache.put(key, result.flac[i], sentence, meta)


def iter_clips(cache: ClipCache, keys: Sequence[str]) -> Iterator[np.ndarray]:
    """Each clip's audio in order, read (and checksum-verified) one at a time as stitching asks.
    Raises SynthesisError when one has vanished or is corrupt (the next run synthesizes it)."""
    for key in keys:
        clip = cache.get(key)
        if clip is None:
            raise SynthesisError(f"clip {key[:12]} vanished from the cache (corrupt?); run again")
        yield clip.audio


def clip_rate(cache: ClipCache, keys: Sequence[str], preset: Preset) -> int:
    """The engine's sample rate, from the first clip's sidecar (all clips of a run share it)."""
    meta = cache.meta(keys[0]) if keys else None
    return int(meta["sample_rate"]) if meta else preset.sample_rate


def pauses_after(lines: list[Line], preset: Preset) -> list[float]:
    return [line.pause_s if line.pause_s is not None else preset.pause_for(line.boundary) for line in lines]


def stitch(lines: list[Line], cache: ClipCache, keys: Sequence[str], preset: Preset,
           work: Path | None = None) -> Assembly:
    """The clips in script order with the preset's pauses, stitched into a spill under `work`
    (one engine, one rate; each clip read once). Close the result when delivered."""
    return assemble(iter_clips(cache, keys), clip_rate(cache, keys, preset), pauses_after(lines, preset), preset, work)


EXPORT_MEMORY_MB = 200  # one chapter export's peak, any length (54-min chapter measured: ~170 MB)


@functools.lru_cache(maxsize=1)
def export_slots() -> threading.BoundedSemaphore:
    """How many chapters this process masters at once: bounded by memory (BOOKCAST_MEMORY_MB,
    default 512, over EXPORT_MEMORY_MB each) and by CPU cores (mastering is CPU-bound), never by
    the task runner's thread count. Process-wide, so every flow run in it shares the budget."""
    budget = int(os.environ.get("BOOKCAST_MEMORY_MB", "512"))
    slots = max(1, min(os.cpu_count() or 1, budget // EXPORT_MEMORY_MB))
    log.debug("mastering %d chapter(s) at a time", slots)
    return threading.BoundedSemaphore(slots)


def chapter_file_name(index: int, title: str, total: int) -> str:
    width = max(2, len(str(total)))
    return f"{index:0{width}d}-{slugify(title) or 'chapter'}.mp3"


EXPORT_REVISION = 1  # bump when stitching/mastering/encoding changes what the same inputs produce


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


def delivered_files(entry: dict) -> list[dict]:
    """The (file, sha256, title) records a chapter entry delivered: its parts, or its one file."""
    return entry.get("parts") or [{"file": entry.get("file", ""), "sha256": entry.get("sha256"),
                                   "title": entry.get("title", "")}]


def reusable(previous: dict | None, key: str, out_dir: Path) -> bool:
    """True if the previous run delivered this exact chapter and its files are intact."""
    if not previous or previous.get("status") != "ok" or previous.get("export_key") != key:
        return False
    try:
        return all((out_dir / f["file"]).is_file() and file_sha256(out_dir / f["file"]) == f["sha256"]
                   for f in delivered_files(previous))
    except OSError:
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
           preset: Preset, out_dir: Path, key: str = "", work: Path | None = None) -> ChapterResult:
    """Stitch, master and write one chapter's MP3 (or its parts) with transcripts; returns its
    measured summary. Streams: each clip is read once, the chapter spills to `work` (default
    `<out_dir>/.work/tmp`) and is mastered and encoded block by block."""
    with export_slots():
        return _export(book, index, total, lines, cache, keys, preset, out_dir, key, work or out_dir / ".work" / "tmp")


def _export(book: Book, index: int, total: int, lines: list[Line], cache: ClipCache, keys: Sequence[str],
            preset: Preset, out_dir: Path, key: str, work: Path) -> ChapterResult:
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
            _, measures = deliver_mp3(path, assembly.signal, assembly.sample_rate, preset, tags,
                                      room_tone=True, work=work)
            items = cues(assembly.spans, texts[a:b])
            write_srt(path.with_suffix(".srt"), items)
            write_vtt(path.with_suffix(".vtt"), items)
            parts.append({"file": path.name, "title": tags.title, "duration_s": round(measures.duration_s, 3),
                          "measures": measures.to_dict(), "qc": delivery_qc(path, measures, assembly, preset).to_dict(),
                          "sha256": file_sha256(path),
                          "spans": [(round(s, 3), round(e, 3), t) for (s, e), t in zip(assembly.spans, texts[a:b])]})
    finally:
        whole.close()
    first = parts[0]
    qc = first["qc"] if len(parts) == 1 else {
        "passed": all(p["qc"]["passed"] for p in parts),
        "rules": [dict(r, rule=f"part{k}:{r['rule']}") for k, p in enumerate(parts, 1) for r in p["qc"]["rules"]]}
    return ChapterResult(
        index=index, title=chapter.title, file=first["file"], sha256=first["sha256"],
        duration_s=round(sum(p["duration_s"] for p in parts), 3), sentences=len(lines),
        measures=first["measures"], qc=qc, export_key=key, spans=first["spans"] if len(parts) == 1 else [],
        parts=parts if len(parts) > 1 else [],
    )


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

