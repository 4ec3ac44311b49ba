"""Orchestration benchmark (issue 5), printed side by side in one run:

1. synthesis of the same book with 1 vs 2 CPU worker processes (espeak: CPU-bound) → speed-up;
2. a book of about one hour of audio end to end through the Prefect flow, split into ingest /
   front end / synthesis / mastering+encode (measured by a plain, Prefect-free run of the same
   steps) with orchestration = flow wall time − plain wall time;
3. an unchanged rerun through the flow (no synthesis expected).

Run: python bench/bench_orchestration.py [--minutes 60] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from book_gen import write_book  # noqa: E402

WORDS_PER_MINUTE = 150  # espeak at rate 165 with pauses, measured on generated text


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def plain_run(book_path: Path, out: Path, workers: int) -> dict:
    """The same steps as produce_book, without Prefect: returns seconds per stage."""
    from flows.steps.export import export as export_chapter
    from flows.steps.project import load_project
    from flows.steps.review import review
    from flows.steps.spoken import script
    from flows.steps.synthesis import Synthesis, engine_spec, synthesize
    from ingest.reader import read_book
    from mastering.presets import get_preset
    from synth.cache import ClipCache
    from synth.pool import PoolConfig, make_pool

    t: dict[str, float] = {}
    proj = load_project(book_path)
    book, t["ingest"] = timed(read_book, proj.source)
    scripts, t["front end"] = timed(lambda: [script(c, book.meta.language, proj.engine) for c in book.chapters])
    preset = get_preset("acx")
    spec = engine_spec(proj.engine, proj.voice, proj.lexicon, proj.voice_settings)
    start = time.perf_counter()
    pool = make_pool(PoolConfig(workers=workers))
    synth = Synthesis(pool, spec, pool.fingerprint(spec), ClipCache(out / ".work" / "clips"))
    clips = [synthesize(synth, lines) for lines in scripts]
    clips = [review(synth, lines, c.keys) for lines, c in zip(scripts, clips)]
    pool.close()
    t["synthesis"] = time.perf_counter() - start

    def export(i: int):
        lines = scripts[i - 1]
        return export_chapter(book, i, len(book.chapters), lines, synth.cache, clips[i - 1].keys, preset, out)

    start = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        results = list(ex.map(export, range(1, len(book.chapters) + 1)))
    t["mastering+encode"] = time.perf_counter() - start
    t["audio_min"] = sum(r.duration_s for r in results) / 60
    return t


def synth_only(book_path: Path, workers: int, work: Path) -> tuple[float, float]:
    """(seconds including worker start-up, seconds of synthesis after start-up)."""
    from flows.steps.project import load_project
    from flows.steps.spoken import script
    from flows.steps.synthesis import Synthesis, engine_spec, synthesize
    from ingest.reader import read_book
    from synth.cache import ClipCache
    from synth.pool import PoolConfig, make_pool

    proj = load_project(book_path)
    book = read_book(proj.source, proj.reading)
    scripts = [line for c in book.chapters for line in script(c, book.meta.language, proj.engine)]
    spec = engine_spec(proj.engine, proj.voice, proj.lexicon, proj.voice_settings)
    start = time.perf_counter()
    pool = make_pool(PoolConfig(workers=workers))
    fingerprint = pool.fingerprint(spec)  # starts every worker and builds its engine
    warm = time.perf_counter()
    synthesize(Synthesis(pool, spec, fingerprint, ClipCache(work)), scripts)
    end = time.perf_counter()
    pool.close()
    return end - start, end - warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="target audio length of the book")
    ap.add_argument("--keep", help="keep outputs in this folder")
    args = ap.parse_args()
    from flows import runtime

    runtime.configure()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bookcast-bench-"))
    chapters = max(1, round(args.minutes / 6))
    book = write_book(root / "book.md", chapters, int(args.minutes * WORDS_PER_MINUTE / chapters))
    small = write_book(root / "small.md", 4, int(min(args.minutes, 10) * WORDS_PER_MINUTE / 4), seed=3)

    print(f"== 1 vs 2 CPU workers (espeak), {args.minutes:.0f}-minute book, fresh cache ==")
    (one_all, one), (two_all, two) = synth_only(book, 1, root / "w1"), synth_only(book, 2, root / "w2")
    print("               with start-up   synthesis only")
    print(f"  1 worker     {one_all:7.2f} s       {one:7.2f} s")
    print(f"  2 workers    {two_all:7.2f} s       {two:7.2f} s")
    print(f"  speed-up     {one_all / two_all:7.2f}x       {one / two:7.2f}x   (target >= 1.6x)")

    print(f"\n== {args.minutes:.0f}-minute book: plain steps (no Prefect), 2 workers ==")
    plain = plain_run(book, root / "plain", 2)
    plain_total = sum(v for k, v in plain.items() if k != "audio_min")
    for k, v in plain.items():
        if k != "audio_min":
            print(f"  {k:<17} {v:7.2f} s  ({100 * v / plain_total:4.1f} %)")
    print(f"  {'total':<17} {plain_total:7.2f} s for {plain['audio_min']:.1f} min of audio")

    from flows.produce import produce_book

    print("\n== the same book through the Prefect flow (ephemeral server) ==")
    _, warm = timed(produce_book, str(small), str(root / "warm"), [1], None, 2)
    print(f"  server start + first small run {warm:7.2f} s (not counted below)")
    manifest, flow_total = timed(produce_book, str(book), str(root / "flow"), None, None, 2)
    orchestration = flow_total - plain_total
    print(f"  flow wall time    {flow_total:7.2f} s   (target < 120 s)")
    print(f"  orchestration     {orchestration:7.2f} s = {100 * orchestration / flow_total:4.1f} % "
          f"(flow − plain; target < 10 %)")
    print(f"  audio             {manifest['total']['duration_s'] / 60:7.1f} min, "
          f"{manifest['this_run']['synthesized']} sentences synthesized")

    rerun, rerun_s = timed(produce_book, str(book), str(root / "flow"), None, None, 2)
    print(f"\n== unchanged rerun ==\n  wall {rerun_s:7.2f} s, synthesized {rerun['this_run']['synthesized']}, "
          f"reused {rerun['this_run']['reused']}   (target: 0 synthesized, < 15 s)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
