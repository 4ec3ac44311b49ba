"""Clip QC: find synthesized sentences that are probably wrong, before they reach a chapter.

GPT-SoVITS fails in recognisable ways: it skips words (the clip is much shorter than its text
warrants), loops or babbles (much longer), produces near-silence, or overshoots into clipping.
Speaking rate is steady within one chapter and one voice, so the duration per character of text
is compared with the chapter's own distribution (median and MAD on a log scale) rather than with a
fixed rate. Characters are weighted by how long they take to say: a Han character is about a
syllable, a Latin letter about a third of one.

Pure functions: the synthesis task re-takes flagged clips with a new seed and reports the rest.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np

from .stitch import trim_bounds

FlagReason = Literal["too_fast", "too_slow", "clipped", "silent"]

_LATIN_WEIGHT = 0.3  # a letter or digit ≈ 0.3 of a Han character's speaking time
_MIN_UNITS = 4.0  # shorter texts vary too much to judge their rate
_ROBUST_Z = 3.5  # |robust z| above this is an outlier (Iglewicz & Hoaglin)
_MIN_RATIO = 1.6  # and at least this far from the median in either direction
_CLIP_LEVEL = 0.999  # |sample| at or above this counts as full scale
_CLIP_RUN = 3  # this many consecutive full-scale samples is clipping, not a peak
_SILENT_DB = -50.0  # a clip whose loudest 10 ms is under this has nothing in it


@dataclass(frozen=True)
class ClipFlag:
    index: int
    reason: FlagReason
    detail: str


def text_units(text: str) -> float:
    """Speaking-time units of `text`: 1 per Han/kana/hangul character, 0.3 per letter or digit."""
    units = 0.0
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff" or "\u3040" <= ch <= "\u30ff" or "\uac00" <= ch <= "\ud7af":
            units += 1.0
        elif unicodedata.category(ch)[0] in "LN":
            units += _LATIN_WEIGHT
    return units


def speech_seconds(clip: np.ndarray, sample_rate: int) -> float:
    """Duration of the clip without leading/trailing silence (the same trim stitching uses)."""
    start, stop = trim_bounds(np.asarray(clip, dtype=np.float32), sample_rate, 40.0, 0.0)
    return (stop - start) / sample_rate


def clipped(clip: np.ndarray) -> int:
    """Number of runs of ≥3 consecutive samples at full scale (hard clipping)."""
    hot = np.abs(np.asarray(clip, dtype=np.float32)) >= _CLIP_LEVEL
    if not hot.any():
        return 0
    edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int(np.sum(stops - starts >= _CLIP_RUN))


def is_silent(clip: np.ndarray, sample_rate: int) -> bool:
    """True when the clip's loudest 10 ms frame is under −50 dBFS (or the clip is empty)."""
    x = np.asarray(clip, dtype=np.float64)
    frame = max(1, int(0.01 * sample_rate))
    n = len(x) // frame * frame
    if n == 0:
        return len(x) == 0 or float(np.sqrt(np.mean(x ** 2))) < 10 ** (_SILENT_DB / 20)
    top = float(np.sqrt(np.square(x[:n]).reshape(-1, frame).mean(axis=1).max()))
    return top < 10 ** (_SILENT_DB / 20)


def rate_outliers(durations_s: Sequence[float], texts: Sequence[str]) -> list[ClipFlag]:
    """Clips whose seconds per text unit are far from the chapter's median (robust z-score).

    Needs at least 5 judgeable clips (text of ≥ 4 units, non-zero duration) to say anything.
    """
    if len(durations_s) != len(texts):
        raise ValueError("one text per duration")
    idx, rates = [], []
    for i, (d, t) in enumerate(zip(durations_s, texts)):
        units = text_units(t)
        if units >= _MIN_UNITS and d > 0:
            idx.append(i)
            rates.append(math.log(d / units))
    if len(rates) < 5:
        return []
    r = np.array(rates)
    med = float(np.median(r))
    mad = float(np.median(np.abs(r - med))) or 1e-3
    flags = []
    for i, v in zip(idx, r):
        z = 0.6745 * (v - med) / mad
        ratio = math.exp(v - med)
        if abs(z) > _ROBUST_Z and (ratio >= _MIN_RATIO or ratio <= 1 / _MIN_RATIO):
            reason: FlagReason = "too_slow" if ratio > 1 else "too_fast"
            flags.append(ClipFlag(i, reason, f"{ratio:.2f}× the chapter's time per character"))
    return flags


def clip_flags(clips: Sequence[np.ndarray], sample_rate: int,
               texts: Sequence[str]) -> list[ClipFlag]:
    """All flags for a chapter's clips (same order as `texts`), sorted by clip index.

    A silent clip is flagged only as silent; rate outliers are judged among the audible clips.
    Raises ValueError when clips and texts differ in number (a programming error).
    """
    if len(clips) != len(texts):
        raise ValueError(f"{len(clips)} clips but {len(texts)} texts")
    flags: list[ClipFlag] = []
    durations = []
    for i, clip in enumerate(clips):
        if is_silent(clip, sample_rate):
            flags.append(ClipFlag(i, "silent", "no sound above −50 dBFS"))
            durations.append(0.0)
            continue
        runs = clipped(clip)
        if runs:
            flags.append(ClipFlag(i, "clipped", f"{runs} clipped run(s) at full scale"))
        durations.append(speech_seconds(clip, sample_rate))
    flags += rate_outliers(durations, texts)
    return sorted(flags, key=lambda f: f.index)


def retake_flagged(clips: Sequence[np.ndarray], sample_rate: int, texts: Sequence[str],
                   resynthesize: Callable[[int, int], np.ndarray], max_attempts: int = 2
                   ) -> tuple[list[np.ndarray], list[ClipFlag]]:
    """Re-take flagged clips until they pass or `max_attempts` runs out.

    `resynthesize(index, attempt)` returns a new take of clip `index` (the caller derives a new
    seed from `attempt`, 1-based, and must return audio at `sample_rate`). A re-take is kept only
    if it is no longer flagged; flags are judged against the whole chapter each round, because
    the median moves as takes improve. Returns (clips, flags still present).
    """
    current = list(clips)
    flags = clip_flags(current, sample_rate, texts)
    for attempt in range(1, max_attempts + 1):
        if not flags:
            break
        for index in sorted({f.index for f in flags}):
            candidate = resynthesize(index, attempt)
            trial = current[:index] + [candidate] + current[index + 1:]
            if not any(f.index == index for f in clip_flags(trial, sample_rate, texts)):
                current[index] = candidate
        flags = clip_flags(current, sample_rate, texts)
    return current, flags
