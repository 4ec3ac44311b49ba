"""Memory does not grow with the book: peak memory of `bookcast make` (PSS of all its processes) on a chapter
four times as long stays within 1.2× (plus sampling noise), and under 1.5 GB. Slow: two real runs.
bench/bench_scale.py measures 1, 5 and 20 hours."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORDS_PER_MINUTE = 175  # espeak's default rate


def one_chapter_book(path: Path, minutes: float, chapters: int = 1) -> Path:
    """A Markdown book of `chapters` chapters of `minutes` of espeak speech each (no sentence
    repeats, so every one is synthesized)."""
    words = ("the keeper climbed the narrow stairs and watched the ships pass beyond the rocks while the wind "
             "carried salt and rain across the island where the lamp had burned for a hundred years").split()
    text, k = "", 0
    for chapter in range(1, chapters + 1):
        sentences, count = [], 0
        while count < minutes * WORDS_PER_MINUTE:
            n = 9 + k % 7
            sentences.append(" ".join(words[(k + i * 3) % len(words)] for i in range(n)).capitalize() + f" {k}.")
            count, k = count + n + 1, k + 1
        paragraphs = [" ".join(sentences[i:i + 5]) for i in range(0, len(sentences), 5)]
        text += f"# {'One' if chapters == 1 else f'Chapter {chapter}'}\n\n" + "\n\n".join(paragraphs) + "\n\n"
    path.write_text("---\ntitle: Scale\n---\n" + text.rstrip() + "\n", encoding="utf-8")
    return path


def peak_rss(argv: list[str], env: dict) -> int:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    main, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [main, *main.children(recursive=True)]:
                try:
                    total += p.memory_full_info().pss  # shared pages once (a fork about to exec is not doubled)
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.1)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else proc.returncode
    return peak


@pytest.mark.slow
def test_peak_rss_does_not_grow_with_chapter_length(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    peaks = {}
    for minutes in (8, 32):
        book = one_chapter_book(tmp_path / f"book-{minutes}.md", minutes)
        peaks[minutes] = peak_rss([sys.executable, "-m", "flows.cli", "make", str(book), "--out",
                                   str(tmp_path / f"out-{minutes}"), "--workers", "2"], env)
    assert peaks[32] <= 1.2 * peaks[8] + 50 * 2**20, peaks
    assert max(peaks.values()) <= 1.5 * 2**30, peaks


@pytest.mark.slow
def test_peak_rss_does_not_grow_with_chapter_count(tmp_path: Path) -> None:
    """A book four times as long (more chapters, same length each) peaks at the same memory: nothing
    keeps every chapter's audio or results alive (it did: synthesis futures held in reference cycles)."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    peaks = {}
    for chapters in (4, 16):
        book = one_chapter_book(tmp_path / f"book-{chapters}.md", 3, chapters)
        peaks[chapters] = peak_rss([sys.executable, "-m", "flows.cli", "make", str(book), "--out",
                                    str(tmp_path / f"out-{chapters}"), "--workers", "2"], env)
    assert peaks[16] <= 1.2 * peaks[4] + 50 * 2**20, peaks
