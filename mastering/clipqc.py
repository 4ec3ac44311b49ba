"""Clip QC: find synthesized sentences that are probably wrong, before they reach a chapter.

GPT-SoVITS fails in recognisable ways: it skips words (the clip is much shorter than its text
warrants), loops or babbles (much longer), produces near-silence, or overshoots into clipping.
Speaking rate is steady within one chapter and one voice, so the duration per character of text
is compared with the chapter's own distribution (median and MAD on a log scale) rather than with a
fixed rate. Characters are weighted by how long they take to say: a Han character is about a
syllable, a Latin letter about a third of one.

Pure functions: `clip_stats` measures a take once (in the synthesis worker); the flags are judged
on those numbers, and the synthesis task re-takes flagged clips with a new seed and reports the rest.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Sequence, TypeVar

import numpy as np

from .stitch import trim_bounds

FlagReason = Literal["too_fast", "too_slow", "clipped", "silent"]
T = TypeVar("T")

_LATIN_WEIGHT = 0.3  # a letter or digit ≈ 0.3 of a Han character's speaking time
_MIN_UNITS = 4.0  # shorter texts vary too much to judge their rate
# Pauses take time the letters do not count. Fitted (least squares) on the 9,873 clips of a full
# Moby-Dick: a comma, semicolon or colon ≈ 1.6 units, a stop inside the clip 0.7, a dash 0.8, and
# every clip 0.85 of lead-in. Judged with them, that book's chapters flag 0 of 7,290 clips instead of
# 27 (every one a comma-heavy line such as "Shove him off, you Queequeg—the whale there!—prick
# him!"), and the spread of rates per chapter (median MAD) falls from 0.053 to 0.031, so a skipped
# word or a loop stands out further.
_PAUSE_UNITS = {",": 1.6, ";": 1.6, ":": 1.6, "，": 1.6, "、": 1.6, "；": 1.6, "：": 1.6,
                ".": 0.7, "!": 0.7, "?": 0.7, "…": 0.7, "。": 0.7, "！": 0.7, "？": 0.7,
                "—": 0.8, "–": 0.8, "-": 0.8}
_CLIP_UNITS = 0.85
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


def spoken_units(text: str) -> float:
    """`text_units` plus the pauses inside the text and a clip's lead-in: what a clip's duration
    is proportional to. Marks before the first word or after the last are not pauses inside the
    clip (its silence is trimmed): '—-"There Leviathan,' has none."""
    body = text.strip(" .,;:!?…。，；：！？、\"'“”‘’「」()（）—–-")
    return text_units(text) + _CLIP_UNITS + sum(_PAUSE_UNITS.get(ch, 0.0) for ch in body)


@dataclass(frozen=True)
class ClipStats:
    """What clip QC needs of one take, measured once where the audio is at hand (the synthesis
    worker) and kept in the clip cache's sidecar, so judging a chapter never reloads its audio."""

    speech_s: float  # duration without leading/trailing silence (the trim stitching applies)
    silent: bool  # loudest 10 ms frame under −50 dBFS
    clipped_runs: int  # runs of ≥ 3 samples at full scale

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ClipStats":
        return cls(float(data["speech_s"]), bool(data["silent"]), int(data["clipped_runs"]))


def clip_stats(audio: np.ndarray, sample_rate: int) -> ClipStats:
    """Measure one take (mono float audio at its own rate)."""
    x = np.asarray(audio, dtype=np.float32)
    silent = is_silent(x, sample_rate)
    return ClipStats(0.0 if silent else speech_seconds(x, sample_rate), silent, 0 if silent else clipped(x))


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
    """Clips whose seconds per spoken unit are far from the chapter's median (robust z-score).

    Needs at least 5 judgeable clips (text of ≥ 4 units, non-zero duration) to say anything.
    """
    if len(durations_s) != len(texts):
        raise ValueError("one text per duration")
    idx, rates = [], []
    for i, (d, t) in enumerate(zip(durations_s, texts)):
        if text_units(t) >= _MIN_UNITS and d > 0:
            idx.append(i)
            rates.append(math.log(d / spoken_units(t)))
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


def flags_from_stats(stats: Sequence[ClipStats], texts: Sequence[str]) -> list[ClipFlag]:
    """All flags for a chapter's takes (same order as `texts`, which should be the spoken form:
    "1906" takes as long as "nineteen oh six"), sorted by clip index.

    A silent clip is flagged only as silent; rate outliers are judged among the audible clips.
    Raises ValueError when stats and texts differ in number (a programming error).
    """
    if len(stats) != len(texts):
        raise ValueError(f"{len(stats)} clips but {len(texts)} texts")
    flags: list[ClipFlag] = []
    durations = []
    for i, st in enumerate(stats):
        if st.silent:
            flags.append(ClipFlag(i, "silent", "no sound above −50 dBFS"))
            durations.append(0.0)
            continue
        if st.clipped_runs:
            flags.append(ClipFlag(i, "clipped", f"{st.clipped_runs} clipped run(s) at full scale"))
        durations.append(st.speech_s)
    flags += rate_outliers(durations, texts)
    return sorted(flags, key=lambda f: f.index)


def clip_flags(clips: Sequence[np.ndarray], sample_rate: int, texts: Sequence[str]) -> list[ClipFlag]:
    """`flags_from_stats` on arrays (measured here)."""
    if len(clips) != len(texts):
        raise ValueError(f"{len(clips)} clips but {len(texts)} texts")
    return flags_from_stats([clip_stats(c, sample_rate) for c in clips], texts)


def retake_flagged(takes: Sequence[T], measure: Callable[[T], ClipStats], texts: Sequence[str],
                   resynthesize: Callable[[int, int], T], max_attempts: int = 2
                   ) -> tuple[list[T], list[ClipFlag]]:
    """Re-take flagged clips until they pass or `max_attempts` runs out.

    `takes` are anything `measure` turns into ClipStats (arrays, or cache keys whose stats are in
    the sidecar); `resynthesize(index, attempt)` returns a new take of clip `index` (the caller
    derives a new seed from `attempt`, 1-based). A re-take is kept only if it is no longer
    flagged; flags are judged against the whole chapter each round, because the median moves as
    takes improve. Returns (takes, flags still present).
    """
    current = list(takes)
    stats = [measure(t) for t in current]
    flags = flags_from_stats(stats, texts)
    for attempt in range(1, max_attempts + 1):
        if not flags:
            break
        for index in sorted({f.index for f in flags}):
            candidate = resynthesize(index, attempt)
            trial = stats[:index] + [measure(candidate)] + stats[index + 1:]
            if not any(f.index == index for f in flags_from_stats(trial, texts)):
                current[index], stats = candidate, trial
        flags = flags_from_stats(stats, texts)
    return current, flags
