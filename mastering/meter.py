"""Every level a preset checks, measured on a stream of blocks in memory that does not grow with
the audio's length (a 10-hour file is measured with the same few MB as a 10-second one).

What is kept between blocks: the K-weighting filters' state, per-hop sums (100 ms hops: 36,000
numbers for ten hours) for gated loudness and the noise floor, the energy for RMS, the peak
tracker's few frames of context, and (for QC's head/tail check) one power value per 10 ms frame.
Gated loudness follows BS.1770-4 from the hop sums exactly as `loudness.block_loudness_from_power`
does on a whole array, so a stream and an array give the same numbers (up to float rounding).
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import scipy.signal as ss

from mastering.errors import MasteringError

from .loudness import Measures, k_weighting_sos, lufs_from_hops
from .signal import ArraySignal, Signal, as_2d, blocks
from .truepeak import PeakTracker

_NOISE_WINDOW_S, _NOISE_HOP_S = 0.5, 0.1  # noise floor: quietest 0.5 s, on 100 ms hops
_FRAME_S = 0.010  # head/tail detection frames (as stitching's trim)
_EDGE_THRESHOLD_DB = 40.0  # head/tail room tone ends where sound is within 40 dB of the loudest


class HopSums:
    """Sums of a per-frame quantity over consecutive hops of `size` frames (a partial hop kept)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._done: list[np.ndarray] = []
        self._part = 0.0
        self._fill = 0

    def add(self, values: np.ndarray) -> None:
        v = values
        if self._fill:
            take = min(self.size - self._fill, len(v))
            self._part += float(v[:take].sum(dtype=np.float64))
            self._fill += take
            v = v[take:]
            if self._fill < self.size:
                return
            self._done.append(np.array([self._part]))
            self._part, self._fill = 0.0, 0
        whole = len(v) // self.size * self.size
        if whole:
            self._done.append(v[:whole].reshape(-1, self.size).sum(axis=1, dtype=np.float64))
        if whole < len(v):
            self._part, self._fill = float(v[whole:].sum(dtype=np.float64)), len(v) - whole

    def sums(self) -> np.ndarray:
        """Sums of the whole hops so far (the partial last hop is left out)."""
        return np.concatenate(self._done) if self._done else np.zeros(0)

    def with_partial(self) -> np.ndarray:
        """Whole hops plus the partial last one (zero-padded), as a frame-level analysis sees it."""
        whole = self.sums()
        return np.append(whole, self._part) if self._fill else whole


class Meter:
    """Feed (n, C) float blocks with `update`; read `measures()` (and `edges()` if asked for)."""

    def __init__(self, sample_rate: int, channels: int, edges: bool = False, true_peak: bool = True) -> None:
        if sample_rate <= 0:
            raise MasteringError(f"sample rate must be positive, got {sample_rate}")
        self.sample_rate, self.channels = sample_rate, channels
        self.frames = 0
        self._sos = k_weighting_sos(sample_rate).astype(np.float32)
        self._zi = np.zeros((self._sos.shape[0], 2, channels), np.float32)
        self._k_hops = HopSums(int(0.4 * sample_rate) // 4)  # gating blocks are four hops (75 % overlap)
        self._k_total = 0.0
        self._sq_total = 0.0
        self._noise = HopSums(max(1, int(_NOISE_HOP_S * sample_rate)))
        self._peaks = PeakTracker(sample_rate, channels, oversample=true_peak)
        self._frames = HopSums(max(1, int(_FRAME_S * sample_rate))) if edges else None

    def update(self, block: np.ndarray) -> None:
        x = as_2d(block).astype(np.float32, copy=False)
        if x.shape[1] != self.channels:
            raise MasteringError(f"meter expects {self.channels} channel(s), got {x.shape[1]}")
        if not len(x):
            return
        self.frames += len(x)
        weighted, self._zi = ss.sosfilt(self._sos, x, axis=0, zi=self._zi)  # (n, C) BS.1770 §2.1
        kpow = np.square(weighted[:, 0]) if x.shape[1] == 1 else np.square(weighted).sum(axis=1)
        self._k_hops.add(kpow)
        self._k_total += float(kpow.sum(dtype=np.float64))
        power = np.square(x[:, 0]) if x.shape[1] == 1 else np.square(x).mean(axis=1)  # per frame
        self._sq_total += float(power.sum(dtype=np.float64)) * x.shape[1]
        self._noise.add(power)
        self._peaks.update(x)
        if self._frames is not None:
            mono = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
            self._frames.add(np.square(mono, dtype=np.float64))

    def feed(self, source: Iterable[np.ndarray]) -> "Meter":
        for block in source:
            self.update(block)
        return self

    def lufs(self) -> float:
        """Gated integrated loudness (BS.1770-4 §2.7); a stream shorter than one 400 ms block is
        measured as one block of its own length."""
        return lufs_from_hops(self._k_hops.sums(), self._k_hops.size, self.frames, self._k_total)

    def rms_db(self) -> float:
        mean = self._sq_total / (self.frames * self.channels) if self.frames else 0.0
        return 10.0 * math.log10(mean) if mean > 0.0 else -math.inf

    def noise_floor_db(self) -> float:
        """RMS of the quietest 0.5 s (on 100 ms hops): the room tone between sentences."""
        n, hop = self.frames, self._noise.size
        win = max(1, int(_NOISE_WINDOW_S * self.sample_rate))
        per_win = max(1, int(round(_NOISE_WINDOW_S / _NOISE_HOP_S)))
        hops = self._noise.sums()
        if n == 0:
            return -math.inf
        if n <= win or len(hops) < per_win:
            mean = self._sq_total / (n * self.channels)
            return 10.0 * math.log10(mean) if mean > 0.0 else -math.inf
        sums = np.lib.stride_tricks.sliding_window_view(hops, per_win).sum(axis=1)
        quietest = float(max(sums.min(), 0.0)) / (per_win * hop)
        return 10.0 * math.log10(quietest) if quietest > 0.0 else -math.inf

    def measures(self, known_true_peak_db: float | None = None) -> Measures:
        """Every measure at once (finishes the peak tracker: call after the last block)."""
        true_peak = self._peaks.finish()
        peak = self._peaks.sample_peak
        return Measures(
            duration_s=self.frames / self.sample_rate,
            lufs=self.lufs(),
            rms_db=self.rms_db(),
            sample_peak_db=20.0 * math.log10(peak) if peak > 0.0 else -math.inf,
            true_peak_db=true_peak if known_true_peak_db is None else known_true_peak_db,
            noise_floor_db=self.noise_floor_db(),
        )

    def edges(self) -> tuple[float, float]:
        """Seconds of room tone (or silence) before the first and after the last sound: frames
        within 40 dB of the loudest 10 ms frame are sound (the rule stitching trims by)."""
        assert self._frames is not None, "Meter(edges=True) keeps the frame powers"
        duration = self.frames / self.sample_rate
        frame = self._frames.size
        power = self._frames.with_partial() / frame
        top = float(power.max()) if len(power) else 0.0
        if top <= 1e-12:
            return duration, duration
        loud = np.flatnonzero(power >= top * 10.0 ** (-_EDGE_THRESHOLD_DB / 10.0))
        start = int(loud[0]) * frame
        stop = min(self.frames, (int(loud[-1]) + 1) * frame)
        return start / self.sample_rate, (self.frames - stop) / self.sample_rate


def measure_signal(signal: Signal, edges: bool = False) -> Meter:
    """A Meter fed with all of `signal`, block by block."""
    return Meter(signal.sample_rate, signal.channels, edges).feed(b for _, b in blocks(signal))


def measure(audio: np.ndarray, sample_rate: int, *, known_true_peak_db: float | None = None
            ) -> Measures:
    """Measure everything at once. `known_true_peak_db` skips re-measuring a true peak the caller
    has just measured on this very audio. Raises MasteringError for a bad shape or sample rate."""
    if sample_rate <= 0:
        raise MasteringError(f"sample rate must be positive, got {sample_rate}")
    return measure_signal(ArraySignal(audio, sample_rate)).measures(known_true_peak_db)
