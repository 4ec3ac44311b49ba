"""Prefect tasks: thin wrappers that add retries, names and logs around flows/steps.

One task is a chapter-sized batch, never one sentence (per-task overhead is milliseconds). Audio never
goes through Prefect's result pickling: synthesis stores clips in the content-addressed cache and
returns their keys (NO_CACHE: the clip cache, not Prefect's, decides what is redone).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.steps import export as ex
from flows.steps.manifest import ChapterRecord
from flows.steps.mastering_pool import MasteringPool
from flows.steps.progress import Event, report
from flows.steps.review import review
from flows.steps.synthesis import ChapterClips, Synthesis, synthesize
from ingest.errors import Interrupted
from ingest.model import Book
from ingest.reader import read_book
from ingest.reading import DEFAULT as DEFAULT_READING
from ingest.reading import Reading
from ingest.script import Line
from mastering.presets import Preset


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_book(source: Path, reading: Reading = DEFAULT_READING) -> Book:
    book = read_book(source, reading)
    get_run_logger().info("%s: %d chapters, %s", source.name, len(book.chapters), book.meta.title)
    return book


@task(name="synthesize-chapter", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      task_run_name="synthesize-{index:02d}", retry_condition_fn=lambda task, run, state: not _interrupted(state))
def synthesize_chapter(synth: Synthesis, index: int, lines: list[Line]) -> ChapterClips:
    def on_batch(n: int, seconds: float) -> None:
        report(Event("sentences", chapter=index, sentences=n, audio_s=seconds))

    started = time.perf_counter()
    clips = synthesize(synth, lines, on_batch)
    checked = review(synth, lines, clips.keys)
    logger = get_run_logger()
    logger.info("chapter %d: %d sentences synthesized, %d reused from the cache (%.1f s new audio), %d re-takes",
                index, clips.synthesized, clips.reused, clips.audio_s, checked.retakes)
    for flag in checked.unresolved:
        logger.warning("chapter %d, sentence %d: %s (%s) — not fixed by re-takes: %r", index, flag["index"] + 1,
                       flag["reason"], flag["detail"], lines[flag["index"]].sentence.text[:60])
    return replace(clips, keys=checked.keys, retakes=checked.retakes, flags=checked.unresolved,
                   seconds=round(time.perf_counter() - started, 3))


@task(name="export-chapter", retries=1, cache_policy=NO_CACHE, task_run_name="export-{index:02d}",
      retry_condition_fn=lambda task, run, state: not _interrupted(state))
def export_chapter(book: Book, index: int, lines: list[Line], clips: ChapterClips, synth: Synthesis,
                   masters: MasteringPool, preset: Preset, out_dir: Path, previous: ChapterRecord | None = None,
                   force: bool = False) -> ChapterRecord:
    """Master and write the chapter (on `masters`), unless `previous` (last run's record) delivered
    exactly this already and `force` is off."""
    started = time.perf_counter()
    total = len(book.chapters)
    key = ex.export_key(book, index, total, lines, clips.keys, preset)
    if not force and ex.reusable(previous, key, out_dir):
        assert previous is not None
        result = replace(previous)
        get_run_logger().info("chapter %d: unchanged, %s kept", index, result.file)
    else:
        result = masters.run(ex.export, book, index, total, lines, synth.cache, clips.keys, preset, out_dir, key)
    result.synthesized, result.reused = clips.synthesized, clips.reused
    result.retakes, result.clip_flags = clips.retakes, list(clips.flags)
    result.timing = {**result.timing, "synthesis_s": clips.seconds,
                     "mastering_s": round(time.perf_counter() - started, 3)}
    m = result.measures
    get_run_logger().info("chapter %d -> %s (%.1f s; LUFS %s, RMS %s dB, peak %s dBFS)", index, result.file,
                          result.duration_s, m.get("lufs"), m.get("rms_db"), m.get("sample_peak_db"))
    return result


def _interrupted(state) -> bool:
    """A stop request is not a failure to retry."""
    try:
        state.result(raise_on_failure=True)
    except Interrupted:
        return True
    except Exception:  # any other failure may be transient: retry it
        return False
    return False
