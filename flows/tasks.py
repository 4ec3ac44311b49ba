"""Prefect tasks: thin wrappers that add retries, names and logs around flows/steps.

One task is a chapter-sized batch, never one sentence (per-task overhead is milliseconds). Audio never
goes through Prefect's result pickling: synthesis stores clips in the content-addressed cache and
returns their keys (NO_CACHE: the clip cache, not Prefect's, decides what is redone).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.steps import chapter as steps
from flows.steps.progress import Event, report
from flows.steps.review import review
from ingest.model import Book
from ingest.reader import read_book
from ingest.script import Line
from mastering.presets import Preset
from synth.cache import ClipCache
from synth.jobs import EngineSpec
from synth.pool import Pool


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_book(source: Path) -> Book:
    book = read_book(source)
    get_run_logger().info("%s: %d chapters, %s", source.name, len(book.chapters), book.meta.title)
    return book


@task(name="synthesize-chapter", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      task_run_name="synthesize-{index:02d}")
def synthesize_chapter(pool: Pool, spec: EngineSpec, fingerprint: str, cache: ClipCache, index: int,
                       lines: list[Line], seed: int) -> steps.ChapterClips:
    def on_batch(n: int, seconds: float) -> None:
        report(Event("sentences", chapter=index, sentences=n, audio_s=seconds))

    clips = steps.synthesize(pool, spec, fingerprint, cache, lines, seed, on_batch)
    checked = review(pool, spec, fingerprint, cache, lines, clips.keys, seed)
    logger = get_run_logger()
    logger.info("chapter %d: %d sentences synthesized, %d reused from the cache (%.1f s new audio), %d re-takes",
                index, clips.synthesized, clips.reused, clips.audio_s, checked.retakes)
    for flag in checked.unresolved:
        logger.warning("chapter %d, sentence %d: %s (%s) — not fixed by re-takes: %r", index, flag["index"] + 1,
                       flag["reason"], flag["detail"], lines[flag["index"]].sentence.text[:60])
    return replace(clips, keys=checked.keys, retakes=checked.retakes, flags=checked.unresolved)


@task(name="export-chapter", retries=1, cache_policy=NO_CACHE, task_run_name="export-{index:02d}")
def export_chapter(book: Book, index: int, total: int, lines: list[Line], clips: steps.ChapterClips,
                   cache: ClipCache, preset: Preset, out_dir: Path, previous: dict | None = None,
                   force: bool = False) -> steps.ChapterResult:
    """Master and write the chapter, unless `previous` (last run's manifest entry) delivered exactly
    this already and `force` is off."""
    key = steps.export_key(book, index, total, lines, clips.keys, preset)
    if not force and steps.reusable(previous, key, out_dir):
        result = steps.ChapterResult(**previous)  # type: ignore[arg-type]
        get_run_logger().info("chapter %d: unchanged, %s kept", index, result.file)
    else:
        result = steps.export(book, index, total, lines, cache, clips.keys, preset, out_dir, key)
    result.synthesized, result.reused = clips.synthesized, clips.reused
    result.retakes, result.clip_flags = clips.retakes, list(clips.flags)
    m = result.measures
    get_run_logger().info("chapter %d -> %s (%.1f s; LUFS %s, RMS %s dB, peak %s dBFS)", index, result.file,
                          result.duration_s, m.get("lufs"), m.get("rms_db"), m.get("sample_peak_db"))
    report(Event("chapter", chapter=index, detail=result.to_dict()))
    return result
