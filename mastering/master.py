"""Measure → decide → apply: one gain to the preset's loudness target, then a look-ahead limiter
wherever that gain would break the (true-)peak ceiling.

The gain is a single number for the whole file, so sentences keep their natural level relations
(no per-sentence normalisation). The limiter touches only the few peaks above the ceiling and is
computed without a per-sample Python loop:

1. the true-peak envelope (BS.1770-4 Annex 2, 4× oversampled) gives the reduction each sample
   needs, in dB;
2. a forward running maximum over the look-ahead window starts every reduction early;
3. a linear-in-dB release is an exact running maximum of (reduction + rate·n) − rate·n;
4. a causal moving average over the look-ahead window turns steps into ramps; since every
   averaged value already covers the current sample, the ramp never under-reduces.
All of it runs only on the stretches around samples over the ceiling (a few percent of speech),
glued end to end: each stretch carries enough margin for its reduction to return to zero.

Limiting lowers the loudness a little, so the gain is re-decided on an estimate (the K-weighted
power of the input times the limiter's gain curve, per 100 ms hop) until it settles; the result is
then verified exactly, and the ceiling tightened by any excess the gain modulation caused.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import soxr
from scipy.ndimage import maximum_filter1d

from ingest.errors import MasteringError

from .loudness import (Measures, as_2d, block_loudness_from_power, gated_lufs, measure,
                       true_peak_db, true_peak_envelope, weighted_power)
from .presets import Preset

log = logging.getLogger(__name__)

_MAX_PASSES = 6
_HOP_S = 0.1  # gating blocks are 4 hops of 100 ms (400 ms at 75 % overlap)
_GAIN_TOL_DB = 0.05  # the gain search stops this close to the target (tolerances are ±1 LU)
_AIM_BELOW_DB = 0.05  # the limiter aims this far under its target (see `render_audio`)


def limiter_gain(env: np.ndarray, sample_rate: int, ceiling_db: float, lookahead_ms: float = 5.0,
                 release_db_per_s: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """The limiter's gain curve where it is not 1: (sample indices (M,) int64, gains (M,) float32).

    `env` is the per-sample true-peak envelope (linear, `true_peak_envelope`). Guarantees
    env[n] · gain[n] ≤ ceiling for every sample; see the module docstring for how.
    """
    n = len(env)
    hot = np.flatnonzero(env > 10.0 ** (ceiling_db / 20.0))
    if hot.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    need_hot = 20.0 * np.log10(env[hot].astype(np.float64)) - ceiling_db  # (H,) dB, > 0
    look = max(1, int(round(lookahead_ms * 1e-3 * sample_rate)))
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
    # Causal moving average over `look` samples (fewer at the start of the file). Samples before
    # the first stretch have no reduction, so they count as zeros.
    csum = np.concatenate(([0.0], np.cumsum(released)))
    smooth = np.empty(len(idx), dtype=np.float32)
    head = min(look, len(idx))
    smooth[:head] = csum[1:head + 1] / np.minimum(look, idx[:head] + 1)
    smooth[head:] = (csum[head + 1:] - csum[1:len(idx) - head + 1]) / look
    return idx, np.exp(smooth * np.float32(-math.log(10.0) / 20.0))


def limit(audio: np.ndarray, sample_rate: int, ceiling_db: float, lookahead_ms: float = 5.0,
          release_db_per_s: float = 40.0) -> np.ndarray:
    """Look-ahead true-peak limiter; returns float32 of audio's shape (a copy)."""
    x = np.array(audio, dtype=np.float32)
    env = true_peak_envelope(x, sample_rate, floor=10.0 ** (ceiling_db / 20.0))
    idx, gain = limiter_gain(env, sample_rate, ceiling_db, lookahead_ms, release_db_per_s)
    if x.ndim == 1:
        x[idx] *= gain
    else:
        x[idx] *= gain[:, None]
    return x


def gain_for(lufs: float, rms: float, preset: Preset) -> float:
    """The one gain (dB) that brings audio measuring (`lufs`, `rms`) to the preset's target.

    LUFS steers; where the preset has an RMS window (ACX), the gain is then moved so the RMS lands
    at least 1 dB inside it, because the window, not the LUFS, is what the store checks.
    Raises MasteringError for silent audio (nothing to steer by).
    """
    if not math.isfinite(lufs) or not math.isfinite(rms):
        raise MasteringError("audio is silent; nothing to master")
    gain = preset.target_lufs - lufs
    if preset.rms_min_db is not None and preset.rms_max_db is not None:
        lo, hi = preset.rms_min_db + 1.0, preset.rms_max_db - 1.0
        if rms + gain < lo:
            gain = lo - rms
        elif rms + gain > hi:
            gain = hi - rms
    return gain


def decide_gain_db(m: Measures, preset: Preset) -> float:
    """`gain_for` on a full set of measures. Raises MasteringError for silent audio."""
    return gain_for(m.lufs, m.rms_db, preset)


def conform(audio: np.ndarray, sample_rate: int, preset: Preset) -> np.ndarray:
    """Resample to the preset's rate and mix to its channel count; float32, (N,) or (N, 2).

    Mono to stereo duplicates the channel; stereo to mono averages the two.
    Raises MasteringError for a bad shape or sample rate.
    """
    x = as_2d(audio).astype(np.float32, copy=False)  # (N, C)
    if sample_rate <= 0:
        raise MasteringError(f"sample rate must be positive, got {sample_rate}")
    if sample_rate != preset.sample_rate and len(x):
        x = soxr.resample(x, sample_rate, preset.sample_rate, quality="HQ").astype(np.float32)
    if x.shape[1] != preset.channels:
        x = np.repeat(x, 2, axis=1) if preset.channels == 2 else x.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(x[:, 0]) if preset.channels == 1 else x


class Mastering:
    """One piece of audio analysed once (K-weighted power, true-peak envelope) and rendered at
    any gain and peak target — the decode-and-correct loop re-renders without re-analysing."""

    def __init__(self, audio: np.ndarray, sample_rate: int, preset: Preset) -> None:
        self.preset = preset
        self.sr = preset.sample_rate
        self.x = conform(audio, sample_rate, preset)  # (N,) or (N, 2)
        x2 = as_2d(self.x)
        self.n = x2.shape[0]
        self.kpow = weighted_power(x2, self.sr)  # (N,) float32
        # Per-sample power summed over channels; for mono that is x² itself, computed on demand.
        self._sqsum = None if x2.shape[1] == 1 else np.square(x2, dtype=np.float32).sum(axis=1)
        hop = max(1, int(round(_HOP_S * self.sr)))
        self._hop = hop
        edges = np.arange(0, self.n, hop)
        self._hop_k = np.add.reduceat(self.kpow, edges, dtype=np.float64) if self.n else np.zeros(0)
        squares = np.square(x2[:, 0]) if self._sqsum is None else self._sqsum
        self._sq_total = float(squares.sum(dtype=np.float64))
        channels = 1 if self.x.ndim == 1 else self.x.shape[1]
        self.input_lufs = gated_lufs(block_loudness_from_power(self.kpow, self.sr))
        self.input_rms_db = (10.0 * math.log10(self._sq_total / (self.n * channels))
                             if self._sq_total > 0 else -math.inf)
        self._env: np.ndarray | None = None
        self._env_floor_db = math.inf

    def _envelope(self, floor_db: float) -> np.ndarray:
        """The input's true-peak envelope, exact wherever it could exceed `floor_db`."""
        if self._env is None or floor_db < self._env_floor_db:
            floor_db -= 3.0  # room for the gain to grow a little without recomputing
            self._env = true_peak_envelope(self.x, self.sr, floor=10.0 ** (floor_db / 20.0))
            self._env_floor_db = floor_db
        return self._env

    def _estimate(self, gain_db: float, idx: np.ndarray, gain: np.ndarray) -> tuple[float, float]:
        """(LUFS, RMS dB) of the rendered audio, from the input's per-hop K-weighted power."""
        g2 = 10.0 ** (gain_db / 10.0)
        delta = np.square(gain, dtype=np.float64) - 1.0
        hop_k = self._hop_k
        sq = self._sq_total
        if len(idx):
            hop_k = hop_k + np.bincount(idx // self._hop, weights=self.kpow[idx] * delta,
                                        minlength=len(hop_k))
            sq_idx = (np.square(self.x[idx], dtype=np.float64) if self._sqsum is None
                      else self._sqsum[idx].astype(np.float64))
            sq += float(np.dot(sq_idx, delta))
        block = 4 * self._hop
        if len(hop_k) < 4:
            return self.input_lufs + gain_db, self.input_rms_db + gain_db
        z = np.lib.stride_tricks.sliding_window_view(hop_k, 4).sum(axis=1) / block * g2
        with np.errstate(divide="ignore"):
            lufs = gated_lufs(-0.691 + 10.0 * np.log10(z))
        channels = 1 if self.x.ndim == 1 else self.x.shape[1]
        rms = 10.0 * math.log10(max(sq * g2 / (self.n * channels), 1e-300))
        return lufs, rms

    def _apply(self, gain_db: float, idx: np.ndarray, gain: np.ndarray) -> np.ndarray:
        y = self.x * np.float32(10.0 ** (gain_db / 20.0))
        if y.ndim == 1:
            y[idx] *= gain
        else:
            y[idx] *= gain[:, None]
        return y

    def render(self, gain_offset_db: float = 0.0, peak_target_db: float | None = None
               ) -> tuple[np.ndarray, Measures]:
        """Audio at the preset's target (+ `gain_offset_db`), true peak ≤ `peak_target_db`;
        returns it with its exact measures. Raises MasteringError for silent audio."""
        y, tp = self.render_audio(gain_offset_db, peak_target_db)
        out = measure(y, self.sr, known_true_peak_db=tp)
        log.debug("mastered %s -> %s", self.preset.name, out)
        return y, out

    def render_audio(self, gain_offset_db: float = 0.0, peak_target_db: float | None = None,
                     verify: bool = True) -> tuple[np.ndarray, float | None]:
        """`render` without the final measurement: (audio, its true peak in dBTP when known).

        The limiter aims a hair (0.05 dB) under the target so the gain curve's own effect on
        inter-sample peaks rarely needs a second pass. `verify=False` skips measuring the result's
        true peak (and tightening if it is over by those hundredths of a dB) for callers that
        measure the encoded file anyway. Raises MasteringError for silent audio.
        """
        p = self.preset
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
        idx, curve = empty

        def miss(gain_db: float) -> float:
            """dB still missing to the target at this gain, after limiting (estimated)."""
            nonlocal idx, curve
            if peak_target_db is not None:
                env = self._envelope(peak_target_db - gain_db)
                idx, curve = limiter_gain(env * np.float32(10.0 ** (gain_db / 20.0)), self.sr,
                                          peak_target_db - _AIM_BELOW_DB, p.limiter_lookahead_ms,
                                          p.limiter_release_db_per_s)
            lufs, rms = self._estimate(gain_db, idx, curve)
            return gain_for(lufs, rms, p) + gain_offset_db

        # Secant search on miss(gain) = 0: limiting makes the loudness grow slower than the gain.
        g0 = gain_for(self.input_lufs, self.input_rms_db, p) + gain_offset_db
        m0 = miss(g0)
        gain_db = g0
        if abs(m0) >= _GAIN_TOL_DB:
            g1 = g0 + m0
            for _ in range(_MAX_PASSES):
                m1 = miss(g1)
                gain_db = g1
                if abs(m1) < _GAIN_TOL_DB:
                    break
                slope = (m1 - m0) / (g1 - g0) if g1 != g0 else 0.0
                step = -m1 / slope if slope < -0.05 else m1  # fall back to a plain step
                g0, m0, g1 = g1, m1, g1 + max(-6.0, min(6.0, step))
        y = self._apply(gain_db, idx, curve)
        tp = None
        if peak_target_db is not None and verify:  # the gain curve moves inter-sample peaks
            aim = peak_target_db - _AIM_BELOW_DB
            for _ in range(3):
                tp = true_peak_db(y, self.sr)
                if tp <= peak_target_db:
                    break
                aim -= tp - peak_target_db + 0.02
                env = self._envelope(aim - gain_db)
                idx, curve = limiter_gain(env * np.float32(10.0 ** (gain_db / 20.0)), self.sr,
                                          aim, p.limiter_lookahead_ms, p.limiter_release_db_per_s)
                y = self._apply(gain_db, idx, curve)
                tp = None
            if tp is None:
                tp = true_peak_db(y, self.sr)
            if tp > peak_target_db:  # pathological material: a plain gain is exact
                y *= np.float32(10.0 ** (-(tp - peak_target_db + 0.01) / 20.0))
                tp = None
        log.debug("rendered %s: gain %+.2f dB, %d limited samples", p.name, gain_db, len(idx))
        return y, tp


def master(audio: np.ndarray, sample_rate: int, preset: Preset) -> tuple[np.ndarray, Measures]:
    """Master `audio` to `preset`: returns (float32 audio at preset.sample_rate with
    preset.channels — (N,) for mono, (N, 2) for stereo — and the measures of that result).

    The peak target sits `preset.limiter_margin_db` under the preset ceiling to leave room for the
    MP3 encoder's overshoot; `export.deliver_mp3` re-measures the decoded file and corrects.
    Raises MasteringError for silent or malformed audio.
    """
    ceiling = preset.peak_ceiling_db
    target = None if ceiling is None else ceiling - preset.limiter_margin_db
    return Mastering(audio, sample_rate, preset).render(0.0, target)
