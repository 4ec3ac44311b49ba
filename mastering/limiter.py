"""A look-ahead true-peak limiter, computed without a per-sample Python loop:

1. the true-peak envelope (BS.1770-4 Annex 2, 4× oversampled) gives the reduction each sample
   needs, in dB;
2. a forward running maximum over the look-ahead window starts every reduction early;
3. a linear-in-dB release is an exact running maximum of (reduction + rate·n) − rate·n;
4. a causal moving average over the look-ahead window turns steps into ramps; since every
   averaged value already covers the current sample, the ramp never under-reduces.

All of it runs only on the stretches around samples over the ceiling (a few percent of speech),
glued end to end: each stretch carries enough margin for its reduction to return to zero.

On audio of unbounded length (`windowed_gains`) the same computation runs window by window: a
window's gains depend on nothing older than the longest release (the reduction decays at a fixed
rate), so computing each window from that far back gives exactly the gains of the whole signal.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
from scipy.ndimage import maximum_filter1d

from .truepeak import SCREEN, true_peak_envelope

WINDOW = 1 << 20  # frames per limiter window on long audio (24 s at 44.1 kHz)


def limiter_gain(env: np.ndarray, sample_rate: int, ceiling_db: float, lookahead_ms: float = 5.0,
                 release_db_per_s: float = 40.0, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The limiter's gain curve where it is not 1: (sample indices (M,) int64, gains (M,) float32).

    `env` is the per-sample true-peak envelope (linear, `true_peak_envelope`) of frames starting
    at `offset` in the whole signal (indices returned are relative to `env`). Guarantees
    env[n] · gain[n] ≤ ceiling for every sample; see the module docstring for how.
    """
    n = len(env)
    hot = np.flatnonzero(env > 10.0 ** (ceiling_db / 20.0))
    if hot.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    need_hot = 20.0 * np.log10(env[hot].astype(np.float64)) - ceiling_db  # (H,) dB, > 0
    look = lookahead(sample_rate, lookahead_ms)
    rate = release_db_per_s / sample_rate  # dB per sample
    # Stretches around the hot samples: `look` before (the attack), and after, that sample's
    # release back to zero plus two look-ahead windows, so the next stretch's moving average
    # starts from zero. Overlapping stretches merge (a running maximum of their ends).
    starts = np.maximum(hot - look, 0)
    ends = np.minimum(hot + 2 * look + np.ceil(need_hot / rate).astype(np.int64) + 1, n)
    reach = np.maximum.accumulate(ends)  # (H,) exclusive end of the stretch so far
    first = np.concatenate(([True], starts[1:] > reach[:-1]))
    run_starts = starts[first]
    run_ends = np.concatenate((reach[np.flatnonzero(first)[1:] - 1], reach[-1:]))
    lengths = run_ends - run_starts
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    idx = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(run_starts - offsets, lengths)
    need = np.zeros(len(idx))  # (M,) dB of reduction each sample needs
    need[np.searchsorted(idx, hot)] = need_hot
    # Forward window [k, k + look − 1]: scipy's window shifted fully ahead of the sample.
    ahead = maximum_filter1d(need, size=look, mode="constant", cval=0.0, origin=-(look // 2))
    # Release: r[k] = max over j ≤ k of (ahead[j] − rate·(n_k − n_j)), on the original timeline.
    ramp = idx * rate  # (M,) float64
    ahead += ramp
    released = np.maximum.accumulate(ahead, out=ahead)
    released -= ramp
    # Causal moving average over `look` samples (fewer at the start of the whole signal). Samples
    # before the first stretch have no reduction, so they count as zeros.
    csum = np.concatenate(([0.0], np.cumsum(released)))
    smooth = np.empty(len(idx), dtype=np.float32)
    head = min(look, len(idx))
    smooth[:head] = csum[1:head + 1] / np.minimum(look, idx[:head] + offset + 1)
    smooth[head:] = (csum[head + 1:] - csum[1:len(idx) - head + 1]) / look
    return idx, np.exp(smooth * np.float32(-math.log(10.0) / 20.0))


def lookahead(sample_rate: int, lookahead_ms: float) -> int:
    return max(1, int(round(lookahead_ms * 1e-3 * sample_rate)))


def limit(audio: np.ndarray, sample_rate: int, ceiling_db: float, lookahead_ms: float = 5.0,
          release_db_per_s: float = 40.0) -> np.ndarray:
    """Look-ahead true-peak limiter on an array; returns float32 of audio's shape (a copy)."""
    x = np.array(audio, dtype=np.float32)
    env = true_peak_envelope(x, sample_rate, floor=10.0 ** (ceiling_db / 20.0))
    idx, gain = limiter_gain(env, sample_rate, ceiling_db, lookahead_ms, release_db_per_s)
    if x.ndim == 1:
        x[idx] *= gain
    else:
        x[idx] *= gain[:, None]
    return x


def windowed_gains(env_at: Callable[[int, int], np.ndarray], frames: int, block_max: np.ndarray,
                   scale: float, sample_rate: int, ceiling_db: float, lookahead_ms: float = 5.0,
                   release_db_per_s: float = 40.0, window: int = WINDOW
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The limiter's gains on a long signal at linear `scale`, one window at a time:
    yields (global sample indices, gains) in order, windows without limiting skipped.

    `env_at(lo, hi)` returns the true-peak envelope of frames [lo, hi) (it may return zeros where
    the envelope is known to stay under the ceiling); `block_max[b]` bounds it on frames
    [b·SCREEN, (b+1)·SCREEN), so windows whose neighbourhood never reaches the ceiling are skipped
    without reading anything. Memory: one window plus the release margin.
    """
    ceiling = 10.0 ** (ceiling_db / 20.0)
    hot = np.flatnonzero(block_max * scale > ceiling)
    if hot.size == 0:
        return
    look = lookahead(sample_rate, lookahead_ms)
    worst = 20.0 * math.log10(float(block_max[hot].max()) * scale) - ceiling_db
    margin = int(math.ceil(worst * sample_rate / release_db_per_s)) + 2 * look + 1
    # A hot block at [s, e) shapes gains on [s − look, e + margin): mark the windows that touches.
    first = np.maximum(hot * SCREEN - look, 0) // window
    last = np.minimum(hot * SCREEN + SCREEN + margin, frames - 1) // window
    active = np.zeros(-(-frames // window) + 1, np.int32)
    np.add.at(active, first, 1)
    np.add.at(active, last + 1, -1)
    for w in np.flatnonzero(np.cumsum(active)[:-1] > 0):
        w0, w1 = int(w) * window, min(int(w + 1) * window, frames)
        lo, hi = max(w0 - margin, 0), min(w1 + look, frames)
        idx, gain = limiter_gain(env_at(lo, hi) * np.float32(scale), sample_rate, ceiling_db,
                                 lookahead_ms, release_db_per_s, offset=lo)
        keep = (idx >= w0 - lo) & (idx < w1 - lo)
        if keep.any():
            yield idx[keep] + lo, gain[keep]
