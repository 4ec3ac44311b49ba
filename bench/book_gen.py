"""Deterministic generated books for benchmarks: plausible bilingual prose of a chosen length."""
from __future__ import annotations

import random
from pathlib import Path

_EN = ("the keeper climbed the narrow stairs and watched the ships pass beyond the rocks while the wind "
       "carried salt and rain across the island where the lamp had burned for a hundred years and every "
       "night someone counted the boats returning home before the storm reached the harbour").split()
_ZH = "灯塔守护者每天晚上爬上狭窄的楼梯看着远处的船只经过礁石风把海水和雨带过小岛"


def sentence(rng: random.Random) -> str:
    if rng.random() < 0.3:
        n = rng.randint(8, 18)
        start = rng.randint(0, len(_ZH) - n)
        return _ZH[start:start + n] + "，我们用 PyTorch 记录它。"
    words = [rng.choice(_EN) for _ in range(rng.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def write_book(path: Path, chapters: int, words_per_chapter: int, seed: int = 7) -> Path:
    """A Markdown book: `chapters` chapters of roughly `words_per_chapter` words each."""
    rng = random.Random(seed)
    parts = ["---\ntitle: Benchmark Book\nauthor: bench\nlanguage: en\n---\n"]
    for c in range(1, chapters + 1):
        parts.append(f"# Chapter {c}\n")
        words = 0
        while words < words_per_chapter:
            para = " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))
            words += len(para.split()) + para.count("，") * 4
            parts.append(para + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_english_book(path: Path, chapters: int, words_per_chapter: int, title: str = "Benchmark Book",
                       seed: int = 7) -> Path:
    """A Markdown book of English prose only (a Moby-Dick-like load for the espeak voice):
    `chapters` chapters of about `words_per_chapter` words, in paragraphs of 3-6 sentences."""
    rng = random.Random(seed)
    parts = [f"---\ntitle: {title}\nauthor: bench\nlanguage: en\n---\n"]
    for c in range(1, chapters + 1):
        parts.append(f"# Chapter {c}\n")
        words = 0
        while words < words_per_chapter:
            sentences = [" ".join(rng.choice(_EN) for _ in range(rng.randint(8, 16))).capitalize() + "."
                         for _ in range(rng.randint(3, 6))]
            para = " ".join(sentences)
            words += len(para.split())
            parts.append(para + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
