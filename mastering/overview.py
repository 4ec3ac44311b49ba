"""A delivered file as a picture: its waveform and its level over time, column by column.

The proofing studio draws this for a chapter: where the narration is, how loud each stretch is
against the preset's rule (K-weighted loudness for LUFS presets, plain RMS for ACX), and where the
peaks are. Decoded block by block, so a two-hour chapter costs what a two-minute one does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal as ss
import soundfile as sf

from ingest.errors import InputError
from .loudness import k_weighting_sos

_BLOCK = 1 << 17
LEVEL_WINDOW_S = 0.4  # BS.1770's momentary window: the shortest stretch a level is read over


@dataclass(frozen=True)
class Overview:
    duration_s: float
    low: list[float]  # per column: the lowest sample (-1..1)
    high: list[float]  # per column: the highest sample
    level_db: list[float | None]  # per column: LUFS (weighted) or RMS dB; None where silent
    weighted: bool
    window_s: float  # the stretch each level value is read over

    def to_dict(self) -> dict:
        return {"duration_s": self.duration_s, "low": self.low, "high": self.high, "level_db": self.level_db,
                "level": "LUFS" if self.weighted else "RMS dB", "window_s": self.window_s}


def overview(path: str | Path, columns: int = 1200, weighted: bool = False) -> Overview:
    """Min/max and level per column of the decoded file (mono mix). Raises InputError when
    libsndfile cannot decode it."""
    try:
        with sf.SoundFile(str(path)) as f:
            n, rate = f.frames, f.samplerate
            columns = max(1, min(columns, n))
            edges = np.linspace(0, n, columns + 1).astype(np.int64)[:-1]
            low = np.full(columns, np.inf)
            high = np.full(columns, -np.inf)
            power = np.zeros(columns)
            sos = k_weighting_sos(rate)
            zi = np.zeros((sos.shape[0], 2))
            pos = 0
            for block in f.blocks(_BLOCK, dtype="float32", always_2d=True):
                x = block.mean(axis=1)
                # Columns are runs of frames: reduce each run of this block at once.
                first = int(np.searchsorted(edges, pos, side="right")) - 1
                inner = edges[first + 1:][edges[first + 1:] < pos + len(x)] - pos
                starts = np.concatenate(([0], inner))
                cols = np.arange(first, first + len(starts))
                np.minimum.at(low, cols, np.minimum.reduceat(x, starts))
                np.maximum.at(high, cols, np.maximum.reduceat(x, starts))
                if weighted:
                    y, zi = ss.sosfilt(sos, x.astype(np.float64), zi=zi)
                else:
                    y = x.astype(np.float64)
                np.add.at(power, cols, np.add.reduceat(y * y, starts))
                pos += len(x)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise InputError(f"cannot decode audio ({exc})", path) from exc
    # The level is read over at least LEVEL_WINDOW_S (a column of a short chapter is milliseconds:
    # its "level" would be the waveform again); each column shows its window's level.
    counts = np.diff(np.append(edges, n)).astype(np.float64)
    group = max(1, math.ceil(LEVEL_WINDOW_S * rate * columns / max(n, 1)))
    starts = np.arange(0, columns, group)
    mean = np.repeat(np.add.reduceat(power, starts) / np.maximum(np.add.reduceat(counts, starts), 1.0),
                     np.diff(np.append(starts, columns)))
    offset = -0.691 if weighted else 0.0
    level = [round(offset + 10.0 * math.log10(m), 2) if m > 1e-10 else None for m in mean]
    finite = np.isfinite(low)
    return Overview(round(n / rate, 3), np.round(np.where(finite, low, 0.0), 4).tolist(),
                    np.round(np.where(finite, high, 0.0), 4).tolist(), level, weighted,
                    round(group * n / columns / rate, 3))
