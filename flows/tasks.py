"""Prefect tasks: thin wrappers that add retries, names and logs around flows/chapter.py.

One task is a chapter-sized batch, never one sentence (per-task overhead is milliseconds); results
stay in memory (thread runner, NO_CACHE): audio never goes through Prefect's result pickling.
"""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import chapter as steps
from flows.progress import Event, report
from ingest.model import Book
from ingest.reader import read_book
from ingest.script import Line
from mastering.presets import Preset
from synth.engine import Clip, Engine


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_book(source: Path) -> Book:
    book = read_book(source)
    get_run_logger().info("%s: %d chapters, %s", source.name, len(book.chapters), book.meta.title)
    return book


@task(name="synthesize-chapter", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      task_run_name="synthesize-{index:02d}")
def synthesize_chapter(engine: Engine, index: int, lines: list[Line], seed: int) -> list[Clip]:
    clips = steps.synthesize(engine, lines, seed)
    audio_s = sum(c.duration for c in clips)
    get_run_logger().info("chapter %d: %d sentences, %.1f s of speech", index, len(clips), audio_s)
    report(Event("sentences", chapter=index, sentences=len(clips), audio_s=audio_s))
    return clips


@task(name="export-chapter", retries=1, cache_policy=NO_CACHE, task_run_name="export-{index:02d}")
def export_chapter(book: Book, index: int, total: int, lines: list[Line], clips: list[Clip],
                   preset: Preset, out_dir: Path) -> steps.ChapterResult:
    result = steps.export(book, index, total, lines, clips, preset, out_dir)
    m = result.measures
    get_run_logger().info("chapter %d -> %s (%.1f s, %.1f LUFS, peak %.1f dBFS)", index, result.file,
                          result.duration_s, m.get("lufs", float("nan")), m.get("sample_peak_db", float("nan")))
    report(Event("chapter", chapter=index, detail=result.to_dict()))
    return result
