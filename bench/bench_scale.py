"""Scale: `bookcast make` on books of 1, 5 and 20 hours of espeak audio, and on one book that is a
single 3-hour chapter — wall time, audio seconds per wall second and peak RSS side by side.

Each book is generated (English prose, ~10,500 words per hour of espeak audio) and made by the real
CLI in a subprocess with a fresh output folder and Prefect home, as a user would run it; the
process tree (bookcast, its synthesis workers and its Prefect server) is sampled every 0.2 s. The
20-hour book also prints its stage breakdown from manifest.json (`this_run.seconds`: front end,
synthesis and mastering summed over chapters — they overlap in time — and the run's wall time).

    python bench/bench_scale.py                    # 1 h, 5 h, 20 h, and the 3-hour chapter
    python bench/bench_scale.py --hours 1,5        # quicker
    python bench/bench_scale.py --epub moby-dick.epub   # add real books (IDPF epub3-samples)

Targets (issue: real books at real size): peak RSS ≤ 1.5 GB and flat (20 h within 1.2× of 1 h);
20 hours in ≤ 10 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_gen import write_english_book  # noqa: E402

WORDS_PER_HOUR = 10_500  # espeak at its default 175 words a minute, with pauses


def run_make(book: Path, out: Path, home: Path, extra: list[str] = ()) -> dict:
    """Run `bookcast make` on `book`; returns wall time, peak RSS (tree and main) and the manifest."""
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "make", str(book), "--out", str(out), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    main = psutil.Process(proc.pid)
    peak_tree = peak_main = 0
    while proc.poll() is None:
        try:
            procs = [main, *main.children(recursive=True)]
            pss, rss_main = 0, 0
            for p in procs:
                try:
                    pss += p.memory_full_info().pss
                    if p.pid == proc.pid:
                        rss_main = p.memory_info().rss
                except psutil.Error:
                    pass
            peak_tree = max(peak_tree, pss)
            peak_main = max(peak_main, rss_main)
        except psutil.Error:
            pass
        time.sleep(0.2)
    output = proc.stdout.read() if proc.stdout else ""
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bookcast make {book} failed ({proc.returncode}):\n{output[-2000:]}")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {"wall": wall, "tree": peak_tree, "main": peak_main, "manifest": manifest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", default="1,5,20", help="book lengths to generate, in hours of audio")
    ap.add_argument("--chapter-hours", type=float, default=3.0, help="the single-chapter book (0: skip)")
    ap.add_argument("--epub", action="append", default=[], help="also make this real book")
    ap.add_argument("--keep", help="keep books and outputs in this folder")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bookcast-scale-"))
    books: list[tuple[str, Path]] = []
    for hours in [float(h) for h in args.hours.split(",") if h]:
        chapters = max(1, round(hours * 6.9))  # chapters of ~8.7 minutes, like Moby-Dick's 138 in 20 h
        path = write_english_book(root / f"book-{hours:g}h.md", chapters, int(hours * WORDS_PER_HOUR / chapters),
                                  title=f"Scale {hours:g} hours")
        books.append((f"{hours:g} h, {chapters} chapters", path))
    if args.chapter_hours:
        path = write_english_book(root / "one-chapter.md", 1, int(args.chapter_hours * WORDS_PER_HOUR),
                                  title="One Long Chapter")
        books.append((f"{args.chapter_hours:g} h, one chapter", path))
    books += [(Path(e).name, Path(e)) for e in args.epub]

    rows = []
    for name, book in books:
        print(f"making {name} ...", flush=True)
        r = run_make(book, root / f"out-{book.stem}", root / f"prefect-{book.stem}")
        audio = r["manifest"]["total"]["duration_s"]
        rows.append((name, audio, r))
        print(f"  {r['wall']:.0f} s, {audio / 3600:.2f} h of audio, peak memory (PSS, all processes) {r['tree'] / 2**30:.2f} GB", flush=True)

    print("\n| book | audio | wall | audio s / wall s | peak memory, all processes (PSS) | peak RSS, bookcast |")
    print("|---|---|---|---|---|---|")
    for name, audio, r in rows:
        print(f"| {name} | {audio / 3600:.2f} h | {r['wall']:.0f} s | {audio / r['wall']:.0f} | "
              f"{r['tree'] / 2**30:.2f} GB | {r['main'] / 2**30:.2f} GB |")
    base = rows[0][2]["tree"]
    print("\npeak RSS against the first book: " + ", ".join(f"{name} {r['tree'] / base:.2f}×" for name, _, r in rows))
    longest = max(rows, key=lambda row: row[1])
    seconds = longest[2]["manifest"]["this_run"].get("seconds", {})
    print(f"\nstages of {longest[0]} (synthesis and mastering summed over chapters; they overlap): "
          + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
