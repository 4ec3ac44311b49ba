"""Stitch sentence clips into one chapter: trim, resample, pause — one clip at a time, into a spill.

TTS clips start and end with uneven amounts of silence, so pauses between sentences would wander
if we kept them. Every clip is trimmed by the same rule (a threshold relative to the clip's own
loudest frame, keeping a few milliseconds), then the preset's pauses are inserted exactly, which
makes sentence, paragraph and section rhythm consistent and the clip positions known to the sample
(the spans feed the SRT/VTT transcripts and chapter marks).

The stitched chapter holds speech and digital silence; delivery lays the room-tone bed
(`roomtone`) under it after mastering's gain, at exactly the preset's level. Clips are consumed one
by one (decoded, prepared, appended to a `Spill` in the work folder and dropped), so a chapter of
any length is stitched in the memory of one clip.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soxr

from ingest.errors import raise_if_stopped
from mastering.errors import MasteringError

from .presets import Preset
from .signal import Padded, Signal, Spill

log = logging.getLogger(__name__)

_FRAME_S = 0.010  # trim analysis frame
_FADE_S = 0.003  # raised-cosine fade at each trimmed edge, against clicks


@dataclass(frozen=True)
class Assembly:
    """A stitched chapter: mono speech at `sample_rate` with the preset's pauses (silence), and
    where each clip landed.

    `spans[i]` is (start_s, end_s) of clip i (after trimming) on the output timeline; `frames[i]`
    the same in samples. The audio lives in `signal` (a Spill: read it in blocks, or `.audio` for
    short assemblies); close it with `close()` when delivered.
    """

    signal: Signal = field(repr=False)
    sample_rate: int
    spans: list[tuple[float, float]]
    frames: list[tuple[int, int]] = field(default_factory=list, repr=False)
    head: int = 0  # frames of silence before the first clip
    tail: int = 0  # and after the last

    @property
    def duration(self) -> float:
        return self.signal.frames / self.sample_rate

    @property
    def audio(self) -> np.ndarray:
        """The whole assembly as one (N,) float32 array (short assemblies and tests)."""
        return self.signal.read(0, self.signal.frames)[:, 0]

    def part(self, a: int, b: int) -> "Assembly":
        """Clips a..b−1 as their own assembly (a part of a long chapter), with the same head and
        tail silence as the whole; no audio is copied."""
        start, stop = self.frames[a][0], self.frames[b - 1][1]
        shift = (start - self.head) / self.sample_rate
        return Assembly(Padded(self.signal, start, stop, self.head, self.tail), self.sample_rate,
                        [(s - shift, e - shift) for s, e in self.spans[a:b]],
                        [(s - start + self.head, e - start + self.head) for s, e in self.frames[a:b]],
                        self.head, self.tail)

    def close(self) -> None:
        close = getattr(self.signal, "close", None)
        if close is not None:
            close()


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


def assemble(clips: Iterable[np.ndarray], sample_rate: int, pauses_after: Sequence[float],
             preset: Preset, work: str | Path | None = None) -> Assembly:
    """Trim every clip, resample to the preset's rate, join them with `pauses_after[i]` seconds of
    silence after clip i, and put the preset's head and tail room around the whole, into a Spill
    under `work` (None: in memory). `clips` may be a generator: each clip is dropped once laid.

    The tail replaces the last clip's pause (`pauses_after[-1]` is ignored).
    Raises MasteringError for no clips, a count mismatch, a negative pause or bad audio.
    """
    if not len(pauses_after):
        raise MasteringError("nothing to assemble: no pauses given (one pause per clip)")
    if any(p < 0 for p in pauses_after):
        raise MasteringError("pauses must not be negative")
    if sample_rate <= 0:
        raise MasteringError(f"sample rate must be positive, got {sample_rate}")
    sr = preset.sample_rate
    gaps = [round(p * sr) for p in pauses_after[:-1]] + [round(preset.tail_room_tone_s * sr)]
    head = round(preset.head_room_tone_s * sr)
    spill = Spill(sr, 1, work)
    spans: list[tuple[float, float]] = []
    frames: list[tuple[int, int]] = []
    try:
        spill.append_zeros(head)
        count = 0
        for i, clip in enumerate(clips):
            if i >= len(gaps):
                raise MasteringError(f"more clips than pauses ({len(gaps)}); give one pause per clip")
            raise_if_stopped()
            piece = _prepare(clip, sample_rate, preset, i)
            start = spill.frames
            spill.append(piece)
            frames.append((start, spill.frames))
            spans.append((start / sr, spill.frames / sr))
            spill.append_zeros(gaps[i])
            count += 1
        if count != len(gaps):
            raise MasteringError(f"{count} clips but {len(gaps)} pauses; give one pause per clip")
    except BaseException:
        spill.close()
        raise
    return Assembly(spill, sr, spans, frames, head, gaps[-1])
