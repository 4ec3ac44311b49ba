"""Measure → decide → apply: one gain to the preset's loudness target, then a look-ahead limiter
(`limiter`) wherever that gain would break the (true-)peak ceiling.

The gain is a single number for the whole file, so sentences keep their natural level relations
(no per-sentence normalisation). Limiting lowers the loudness a little, so the gain is re-decided
on an estimate (the K-weighted power of the input times the limiter's gain curve, per 100 ms hop)
until it settles.

`Mastering` works on a `Signal` of any length in bounded memory: one pass measures it (loudness,
RMS, per-block peaks); the true-peak envelope is computed once, only on blocks that could reach
the ceiling, into a sparse store (spilled to the work folder when large); each gain tried re-reads
only the windows the limiter touches; rendering streams the result block by block. Memory is a
few blocks plus per-hop and per-block tables (~1 MB per hour of audio).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import scipy.signal as ss
import soxr

from mastering.errors import MasteringError

from .limiter import WINDOW, windowed_gains
from .loudness import Measures, gated_lufs, k_weighting_sos, lufs_from_hops
from .meter import HopSums, Meter
from .presets import Preset
from .roomtone import room_tone
from .signal import ArraySignal, Signal, Sparse, as_2d, blocks, conformed
from .truepeak import SCREEN, envelope, oversampling_factor, overshoot_bound

log = logging.getLogger(__name__)

_MAX_PASSES = 6
_GAIN_TOL_DB = 0.05  # the gain search stops this close to the target (tolerances are ±1 LU)
_AIM_BELOW_DB = 0.05  # the limiter aims this far under its target (its own effect on peaks)
_FLOOR_MARGIN_DB = 1.0  # envelope exact down to this far under the ceiling at the first gain


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


def conform(audio: np.ndarray, sample_rate: int, preset: Preset) -> np.ndarray:
    """Resample an array to the preset's rate and mix to its channel count; float32, (N,) or (N, 2).

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


@dataclass(frozen=True)
class Plan:
    """A decided rendering: the gain, and the limiter's ceiling (None: no limiting)."""

    gain_db: float
    ceiling_db: float | None


class Mastering:
    """One signal analysed once and rendered at any gain and peak target (the decode-and-correct
    loop re-plans and re-renders without re-analysing). Use as a context manager: the spills in
    `work` (None: kept in memory, for short audio) are removed on exit."""

    def __init__(self, signal: Signal, preset: Preset, work: str | Path | None = None) -> None:
        if signal.sample_rate != preset.sample_rate:
            raise MasteringError(f"audio at {signal.sample_rate} Hz given to a {preset.sample_rate} Hz preset")
        self.preset, self.sr = preset, preset.sample_rate
        self.signal = conformed(signal, preset.channels)
        self.n, self.channels = self.signal.frames, self.signal.channels
        self._analyse()
        self._floor_db = math.inf
        self._env = Sparse(self.n, work)  # the true-peak envelope, where it could reach the floor
        self._exact_to = np.full(len(self._block_max), np.inf)  # per block: floor its envelope is exact to
        self._env_max = np.zeros(len(self._block_max), np.float32)  # the envelope's maximum per block

    def _analyse(self) -> None:
        """One pass: K-weighted power and plain energy summed per hop, and per-block peaks."""
        sos = k_weighting_sos(self.sr).astype(np.float32)
        zi = np.zeros((sos.shape[0], 2, self.channels), np.float32)
        hops = HopSums(int(0.4 * self.sr) // 4)
        sq_hops = HopSums(hops.size)
        k_total, sq_total, maxima = 0.0, 0.0, []
        for _, x in blocks(self.signal, size=WINDOW):
            weighted, zi = ss.sosfilt(sos, x, axis=0, zi=zi)  # (n, C) BS.1770 §2.1
            kpow = np.square(weighted[:, 0]) if self.channels == 1 else np.square(weighted).sum(axis=1)
            hops.add(kpow)
            k_total += float(kpow.sum(dtype=np.float64))
            sq = np.square(x[:, 0]) if self.channels == 1 else np.square(x).sum(axis=1)
            sq_hops.add(sq)
            sq_total += float(sq.sum(dtype=np.float64))
            maxima.append(_block_maxima(np.abs(x[:, 0]) if self.channels == 1 else np.abs(x).max(axis=1),
                                        -(-len(x) // SCREEN)))
        self._hop = hops.size
        self.hop_k = hops.sums()
        # Per hop, K-weighted power per unit of plain energy: how the estimate weighs the energy
        # the limiter removes (see `estimate`).
        sq_by_hop = sq_hops.sums()
        self._k_ratio = np.divide(self.hop_k, sq_by_hop, out=np.zeros_like(self.hop_k), where=sq_by_hop > 0)
        self._block_max = np.concatenate(maxima) if maxima else np.zeros(0, np.float32)
        self.sq_total = sq_total
        self.input_lufs = lufs_from_hops(self.hop_k, self._hop, self.n, k_total)
        self.input_rms_db = (10.0 * math.log10(sq_total / (self.n * self.channels))
                             if sq_total > 0 else -math.inf)

    # ---- the true-peak envelope, exact where it could reach a floor --------------------------

    def _ensure_floor(self, floor_db: float) -> None:
        """Envelope every block that could reach `floor_db` (a lower floor later recomputes the
        blocks that were only exact down to the higher one)."""
        if floor_db >= self._floor_db:
            return
        floor_db -= _FLOOR_MARGIN_DB  # room for the gain to grow without another pass
        floor = 10.0 ** (floor_db / 20.0)
        bm = self._block_max
        reach = bm.copy()
        if len(bm) > 1:  # a block's envelope reads a few frames of its neighbours
            np.maximum(reach[1:], bm[:-1], out=reach[1:])
            np.maximum(reach[:-1], bm[1:], out=reach[:-1])
        wanted = (reach * overshoot_bound(oversampling_factor(self.sr)) >= floor) & (self._exact_to > floor)
        edges = np.diff(np.concatenate(([0], wanted.astype(np.int8), [0])))
        step = WINDOW // SCREEN
        for b0, b1 in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            for c0 in range(int(b0), int(b1), step):  # bounded memory per call
                c1 = min(c0 + step, int(b1))
                lo, hi = c0 * SCREEN, min(c1 * SCREEN, self.n)
                # The run was screened just now, block by block: oversample all of it.
                env = envelope(self.signal, lo, hi, 0.0)
                peaks = _block_maxima(env, c1 - c0)
                self._env_max[c0:c1] = peaks
                # Only blocks that reach the floor are kept: elsewhere the envelope reads as zero,
                # which is as good as its true value for every gain up to the floor's.
                for k0, k1 in _runs(np.flatnonzero(peaks >= floor)):
                    self._env.write(lo + k0 * SCREEN, env[k0 * SCREEN:k1 * SCREEN])
        self._exact_to[wanted] = floor
        self._floor_db = floor_db

    def _gains(self, plan: Plan) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if plan.ceiling_db is None:
            return iter(())
        self._ensure_floor(plan.ceiling_db - plan.gain_db)
        p = self.preset
        return windowed_gains(self._env.read, self.n, self._env_max, 10.0 ** (plan.gain_db / 20.0), self.sr,
                              plan.ceiling_db, p.limiter_lookahead_ms, p.limiter_release_db_per_s)

    # ---- deciding the gain -------------------------------------------------------------------

    def estimate(self, plan: Plan) -> tuple[float, float]:
        """(LUFS, RMS dB) of the rendered audio: the per-hop sums corrected by the limiter's gain
        curve where it acts. The energy it removes is exact (the limited frames are read back);
        its K-weighted share is the hop's own ratio of K-weighted to plain energy — the limiter
        acts on milliseconds, the K-filter's character changes over tenths of seconds, and the
        estimate only steers the gain search (the delivered file is measured exactly)."""
        hop_k, sq, hop = self.hop_k.copy(), self.sq_total, self._hop
        for idx, gain in self._gains(plan):
            delta = np.square(gain, dtype=np.float64) - 1.0
            lo = int(idx[0])
            removed = np.square(self.signal.read(lo, int(idx[-1]) + 1)[idx - lo], dtype=np.float64).sum(axis=1) * delta
            sq += float(removed.sum())
            whole = idx < len(hop_k) * hop
            per_hop = np.bincount(idx[whole] // hop, weights=removed[whole], minlength=len(hop_k))
            hop_k += per_hop * self._k_ratio
        g2 = 10.0 ** (plan.gain_db / 10.0)
        if len(hop_k) < 4:
            return self.input_lufs + plan.gain_db, self.input_rms_db + plan.gain_db
        z = np.lib.stride_tricks.sliding_window_view(hop_k, 4).sum(axis=1) / (4 * hop) * g2
        with np.errstate(divide="ignore"):
            lufs = gated_lufs(-0.691 + 10.0 * np.log10(z))
        rms = 10.0 * math.log10(max(sq * g2 / (self.n * self.channels), 1e-300))
        return lufs, rms

    def plan(self, gain_offset_db: float = 0.0, peak_target_db: float | None = None) -> Plan:
        """The gain that lands the preset's target (+ `gain_offset_db`) after limiting the true
        peak to `peak_target_db` (None: no limiter). Secant search on the estimate: limiting makes
        the loudness grow slower than the gain. Raises MasteringError for silent audio."""
        p = self.preset
        ceiling = None if peak_target_db is None else peak_target_db - _AIM_BELOW_DB

        def miss(gain_db: float) -> float:
            lufs, rms = self.estimate(Plan(gain_db, ceiling))
            return gain_for(lufs, rms, p) + gain_offset_db

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
        log.debug("planned %s: gain %+.2f dB, ceiling %s", p.name, gain_db, ceiling)
        return Plan(gain_db, ceiling)

    # ---- rendering ----------------------------------------------------------------------------

    def render(self, plan: Plan, room_tone_db: float | None = None, seed: int = 0
               ) -> Iterator[np.ndarray]:
        """The mastered audio, block by block: (n, channels) float32 at the preset's rate, the
        room-tone bed (when `room_tone_db` is given) laid under it at exactly that level."""
        scale = np.float32(10.0 ** (plan.gain_db / 20.0))
        gains = self._gains(plan)
        pending = next(gains, None)
        for pos, x in blocks(self.signal, size=WINDOW):
            y = x * scale
            while pending is not None and pending[0][0] < pos + len(y):
                idx, gain = pending
                y[idx - pos] *= gain[:, None]
                pending = next(gains, None)
            if room_tone_db is not None:
                y += room_tone(pos, len(y), self.sr, room_tone_db, seed)[:, None]
            yield y

    def excerpt(self, seconds: float) -> np.ndarray:
        """Up to `seconds` of the input from its middle, (n, channels)."""
        span = min(self.n, int(seconds * self.sr))
        start = (self.n - span) // 2
        return self.signal.read(start, start + span)

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> "Mastering":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _block_maxima(values: np.ndarray, blocks: int) -> np.ndarray:
    """Maximum of each SCREEN-frame block of `values` (the last block may be short)."""
    whole = len(values) // SCREEN
    out = np.zeros(blocks, np.float32)
    if whole:
        out[:whole] = values[:whole * SCREEN].reshape(whole, SCREEN).max(axis=1)
    if len(values) > whole * SCREEN:
        out[whole] = values[whole * SCREEN:].max()
    return out


def _runs(idx: np.ndarray, bridge: int = 1) -> list[tuple[int, int]]:
    """[start, stop) of each run of consecutive values in sorted `idx` (values closer than
    `bridge` joined into one run)."""
    if not len(idx):
        return []
    cut = np.flatnonzero(np.diff(idx) > bridge) + 1
    starts = np.concatenate(([0], cut))
    stops = np.concatenate((cut, [len(idx)]))
    return [(int(idx[a]), int(idx[b - 1]) + 1) for a, b in zip(starts, stops)]


def _flat(audio: np.ndarray, channels: int) -> np.ndarray:
    return np.ascontiguousarray(audio[:, 0]) if channels == 1 else audio


def master(audio: np.ndarray, sample_rate: int, preset: Preset) -> tuple[np.ndarray, Measures]:
    """Master an array to `preset`: returns (float32 audio at preset.sample_rate with
    preset.channels — (N,) for mono, (N, 2) for stereo — and the measures of that result).

    The peak target sits `preset.limiter_margin_db` under the preset ceiling to leave room for the
    MP3 encoder's overshoot (`export.deliver_mp3` re-measures the decoded file and corrects); the
    limited result is verified and the ceiling tightened by any excess the gain curve caused.
    Raises MasteringError for silent or malformed audio.
    """
    ceiling = preset.peak_ceiling_db
    target = None if ceiling is None else ceiling - preset.limiter_margin_db
    with Mastering(ArraySignal(conform(audio, sample_rate, preset), preset.sample_rate), preset) as m:
        plan = m.plan(0.0, target)
        y = np.concatenate(list(m.render(plan)))
        if target is not None:  # the gain curve moves inter-sample peaks a little
            for _ in range(3):
                over = Meter(m.sr, m.channels).feed([y]).measures().true_peak_db - target
                if over <= 0:
                    break
                plan = Plan(plan.gain_db, plan.ceiling_db - over - 0.02)
                y = np.concatenate(list(m.render(plan)))
            over = Meter(m.sr, m.channels).feed([y]).measures().true_peak_db - target
            if over > 0:  # pathological material: a plain gain is exact
                y *= np.float32(10.0 ** (-(over + 0.01) / 20.0))
    return _flat(y, preset.channels), Meter(preset.sample_rate, preset.channels).feed([y]).measures()
