"""Plain (Prefect-free) steps of one chapter: script it, synthesize it, master and export it.

The Prefect tasks in flows/tasks.py wrap these with retries and placement; keeping them plain makes
every step testable on its own and reusable by the rerun and podcast flows.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ingest.model import Book, Chapter
from ingest.script import Line, chapter_script
from mastering.export import deliver_mp3
from mastering.presets import Preset
from mastering.tags import Tags
from mastering.stitch import assemble
from synth.engine import Clip, Engine

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
    measures: dict = field(default_factory=dict)
    spans: list = field(default_factory=list)  # (start_s, end_s, text) per sentence
    error: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def script(chapter: Chapter, language: str) -> list[Line]:
    return chapter_script(chapter, "zh" if language.startswith("zh") else "en")


def synthesize(engine: Engine, lines: list[Line], seed: int) -> list[Clip]:
    clips = engine.synthesize([line.sentence for line in lines], seed=seed)
    if len(clips) != len(lines):
        raise RuntimeError(f"engine {engine.name} returned {len(clips)} clips for {len(lines)} sentences")
    return clips


def pauses_after(lines: list[Line], preset: Preset) -> list[float]:
    return [line.pause_s if line.pause_s is not None else preset.pause_for(line.boundary) for line in lines]


def chapter_file_name(index: int, title: str, total: int) -> str:
    from ingest.model import slugify

    width = max(2, len(str(total)))
    return f"{index:0{width}d}-{slugify(title) or 'chapter'}.mp3"


def export(book: Book, index: int, total: int, lines: list[Line], clips: list[Clip], preset: Preset,
           out_dir: Path) -> ChapterResult:
    """Stitch, master and write one chapter's MP3; returns its measured summary."""
    chapter = book.chapters[index - 1]
    audio = [np.asarray(c.audio, np.float32) for c in clips]
    rate = clips[0].sample_rate if clips else 22050
    assembly = assemble(audio, rate, pauses_after(lines, preset), preset)
    tags = Tags(
        title=chapter.title, album=book.meta.title, artist=book.meta.author,
        narrator=book.meta.narrator, track=index, track_total=total, year=book.meta.year,
        language=book.meta.language, cover=book.meta.cover, cover_mime=book.meta.cover_mime,
    )
    path = out_dir / chapter_file_name(index, chapter.title, total)
    _, measures = deliver_mp3(path, assembly.audio, assembly.sample_rate, preset, tags)
    return ChapterResult(
        index=index, title=chapter.title, file=path.name, duration_s=round(measures.duration_s, 3),
        sentences=len(lines), synthesized=len(lines), measures=measures.to_dict(),
        spans=[(round(s, 3), round(e, 3), line.sentence.text) for (s, e), line in zip(assembly.spans, lines)],
    )
