"""Stitch sentence clips into one chapter: trim, resample, pause, lay room tone.

TTS clips start and end with uneven amounts of silence, so pauses between sentences would wander
if we kept them. Every clip is trimmed by the same rule (a threshold relative to the clip's own
loudest frame, keeping a few milliseconds), then the preset's pauses are inserted exactly, which
makes sentence, paragraph and section rhythm consistent and the clip positions known to the sample
(the spans feed the SRT/VTT transcripts and chapter marks).

Pauses are never digital zero: stores reject files whose silences drop to nothing, and listeners
hear the floor switching off. A seeded, gently low-passed noise bed runs under the whole chapter
at a level chosen so that, after mastering's gain, it sits at the preset's room-tone level.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.signal as ss
import soxr

from ingest.errors import MasteringError

from .loudness import integrated_lufs
from .master import gain_for
from .presets import Preset

log = logging.getLogger(__name__)

_FRAME_S = 0.010  # trim analysis frame
_FADE_S = 0.003  # raised-cosine fade at each trimmed edge, against clicks


@dataclass(frozen=True)
class Assembly:
    """A stitched chapter: mono float32 at `sample_rate`, and where each clip landed.

    `spans[i]` is (start_s, end_s) of clip i (after trimming) on the output timeline.
    """

    audio: np.ndarray = field(repr=False)  # (N,) float32
    sample_rate: int
    spans: list[tuple[float, float]]

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def trim_bounds(clip: np.ndarray, sample_rate: int, threshold_db: float = 40.0,
                keep_s: float = 0.015) -> tuple[int, int]:
    """(start, stop) sample indices of `clip` without its leading/trailing silence.

    A 10 ms frame is sound when its RMS is within `threshold_db` of the loudest frame of the same
    clip (relative, so quiet and loud takes trim alike); `keep_s` of margin stays on each side so
    soft onsets and breath-like releases survive. A silent clip gives (0, 0).
    """
    n = len(clip)
    frame = max(1, int(_FRAME_S * sample_rate))
    count = n // frame + (1 if n % frame else 0)
    if n == 0:
        return 0, 0
    padded = np.zeros(count * frame, dtype=np.float64)
    padded[:n] = clip
    power = np.square(padded).reshape(count, frame).mean(axis=1)  # (frames,)
    top = power.max()
    if top <= 1e-12:  # below −120 dBFS: nothing there
        return 0, 0
    loud = np.flatnonzero(power >= top * 10.0 ** (-threshold_db / 10.0))
    keep = int(keep_s * sample_rate)
    start = max(0, int(loud[0]) * frame - keep)
    stop = min(n, (int(loud[-1]) + 1) * frame + keep)
    return start, stop


def _fade_edges(clip: np.ndarray, sample_rate: int) -> np.ndarray:
    out = clip.astype(np.float32, copy=True)
    k = min(int(_FADE_S * sample_rate), len(out) // 2)
    if k > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k, dtype=np.float32)))  # (k,)
        out[:k] *= ramp
        out[-k:] *= ramp[::-1]
    return out


def room_tone(n: int, sample_rate: int, level_db: float, seed: int = 0) -> np.ndarray:
    """`n` samples of seeded noise with RMS `level_db` dBFS, tilted towards low frequencies the way
    a quiet room is (a one-pole low-pass at about 1 kHz over white noise)."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n, dtype=np.float32)
    pole = float(np.exp(-2.0 * np.pi * 1000.0 / sample_rate))
    # Unit-variance white noise through (1 − p) / (1 − p·z⁻¹) has variance (1 − p) / (1 + p):
    # scale by the exact expectation instead of measuring (one pass fewer over the chapter).
    scale = 10.0 ** (level_db / 20.0) / np.sqrt((1.0 - pole) / (1.0 + pole))
    b = np.array([(1.0 - pole) * scale], dtype=np.float32)
    a = np.array([1.0, -pole], dtype=np.float32)
    return ss.lfilter(b, a, white).astype(np.float32, copy=False)


def _prepare(clip: np.ndarray, sample_rate: int, preset: Preset, index: int) -> np.ndarray:
    a = np.asarray(clip, dtype=np.float32)
    if a.ndim == 2 and a.shape[1] in (1, 2):
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise MasteringError(f"clip {index}: expected mono audio, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise MasteringError(f"clip {index}: audio contains NaN or infinity")
    if sample_rate != preset.sample_rate and len(a):
        a = soxr.resample(a, sample_rate, preset.sample_rate, quality="HQ").astype(np.float32)
    start, stop = trim_bounds(a, preset.sample_rate, preset.trim_threshold_db,
                              preset.trim_keep_ms / 1000.0)
    if stop <= start:
        log.warning("clip %d is silent; it keeps its pause but adds no audio", index)
        return np.zeros(0, dtype=np.float32)
    return _fade_edges(a[start:stop], preset.sample_rate)


def assemble(clips: Sequence[np.ndarray], sample_rate: int, pauses_after: Sequence[float],
             preset: Preset, seed: int = 0) -> Assembly:
    """Trim every clip, resample to the preset's rate, join them with `pauses_after[i]` seconds of
    room tone after clip i, and put the preset's head and tail room tone around the whole.

    The tail replaces the last clip's pause (`pauses_after[-1]` is ignored). Room tone is laid at
    `preset.room_tone_db` minus the gain mastering is expected to apply (the same LUFS-then-RMS
    rule as `master.gain_for`, on the clips' loudness and the chapter's length), so it lands at the
    room-tone level after mastering.
    Raises MasteringError for no clips, a length mismatch, a negative pause or bad audio.
    """
    if not clips:
        raise MasteringError("nothing to assemble: no clips")
    if len(pauses_after) != len(clips):
        raise MasteringError(
            f"{len(clips)} clips but {len(pauses_after)} pauses; give one pause per clip")
    if any(p < 0 for p in pauses_after):
        raise MasteringError("pauses must not be negative")
    if sample_rate <= 0:
        raise MasteringError(f"sample rate must be positive, got {sample_rate}")
    sr = preset.sample_rate
    pieces = [_prepare(c, sample_rate, preset, i) for i, c in enumerate(clips)]

    gaps = [round(p * sr) for p in pauses_after[:-1]] + [round(preset.tail_room_tone_s * sr)]
    head = round(preset.head_room_tone_s * sr)
    total = head + sum(len(p) for p in pieces) + sum(gaps)
    spans: list[tuple[float, float]] = []
    starts = []
    pos = head
    for piece, gap in zip(pieces, gaps):
        starts.append(pos)
        spans.append((pos / sr, (pos + len(piece)) / sr))
        pos += len(piece) + gap
    assert pos == total

    speech = np.concatenate(pieces) if any(len(p) for p in pieces) else np.zeros(0, np.float32)
    lufs = integrated_lufs(speech, sr) if len(speech) else float("-inf")
    # RMS of the finished chapter: the speech's energy spread over speech + pauses. ACX steers on
    # it, and a chapter with long pauses gets more gain than its LUFS alone implies.
    energy = float(np.sum(np.square(speech, dtype=np.float64))) if len(speech) else 0.0
    rms = 10.0 * np.log10(energy / total) if energy > 0.0 else float("-inf")
    expected_gain = gain_for(lufs, rms, preset) if np.isfinite(lufs) and np.isfinite(rms) else 0.0
    out = room_tone(total, sr, preset.room_tone_db - expected_gain, seed)
    for start, piece in zip(starts, pieces):
        out[start:start + len(piece)] += piece
    return Assembly(audio=out, sample_rate=sr, spans=spans)
