"""Measure → decide → apply: one gain to the preset's loudness target, then a look-ahead limiter
wherever that gain would break the (true-)peak ceiling.

The gain is a single number for the whole file, so sentences keep their natural level relations
(no per-sentence normalisation). The limiter only touches the few peaks above the ceiling; it is
computed without a per-sample Python loop:

1. the true-peak envelope (BS.1770-4 Annex 2, 4× oversampled) gives the reduction each sample
   needs, in dB;
2. a forward running maximum over the look-ahead window starts every reduction early;
3. a linear-in-dB release is an exact running maximum of (reduction + rate·n) − rate·n;
4. a causal moving average over the look-ahead window turns steps into ramps; since every
   averaged value already covers the current sample, the ramp never under-reduces.
The oversampled peak can still move slightly once the gain curve modulates the signal, so the
result is re-measured and the ceiling tightened by any excess (at most a few passes).
"""
from __future__ import annotations

import logging
import math

import numpy as np
import soxr
from scipy.ndimage import maximum_filter1d

from ingest.errors import MasteringError

from .loudness import Measures, as_2d, measure, true_peak_db, true_peak_envelope
from .presets import Preset

log = logging.getLogger(__name__)

_MAX_PASSES = 4


def limit(audio: np.ndarray, sample_rate: int, ceiling_db: float, lookahead_ms: float = 5.0,
          release_db_per_s: float = 40.0) -> np.ndarray:
    """Look-ahead peak limiter on the true-peak envelope; returns float32 of audio's shape.

    Guarantees that every sample's true-peak envelope, times its gain, is at or under
    `ceiling_db`; see the module docstring for how.
    """
    x = as_2d(audio).astype(np.float32, copy=False)  # (N, C)
    n = x.shape[0]
    if n == 0:
        return np.asarray(audio, dtype=np.float32)
    env = true_peak_envelope(x, sample_rate)  # (N,)
    with np.errstate(divide="ignore"):
        need = np.maximum(20.0 * np.log10(env.astype(np.float64)) - ceiling_db, 0.0)  # (N,) dB
    if not np.any(need > 0.0):
        return np.asarray(audio, dtype=np.float32)
    look = max(1, int(round(lookahead_ms * 1e-3 * sample_rate)))
    # Forward window [n, n + look − 1]: scipy's window shifted fully ahead of the sample.
    ahead = maximum_filter1d(need, size=look, mode="constant", cval=0.0, origin=-(look // 2))
    # Release at `rate` dB per sample: r[n] = max_k≤n (ahead[k] − rate·(n − k)).
    rate = release_db_per_s / sample_rate
    ramp = rate * np.arange(n, dtype=np.float64)
    released = np.maximum.accumulate(ahead + ramp) - ramp
    # Causal moving average over `look` samples (fewer at the start).
    csum = np.concatenate(([0.0], np.cumsum(released)))
    idx = np.arange(n)
    lo = np.maximum(idx - look + 1, 0)
    smooth = (csum[idx + 1] - csum[lo]) / (idx + 1 - lo)  # (N,) dB of reduction
    gain = (10.0 ** (-smooth / 20.0)).astype(np.float32)  # (N,)
    out = x * gain[:, None]  # (N, C)
    return out[:, 0] if np.ndim(audio) == 1 else out


def decide_gain_db(m: Measures, preset: Preset) -> float:
    """The one gain (dB) that brings measured audio to the preset's target.

    LUFS steers; where the preset has an RMS window (ACX), the gain is then moved so the RMS lands
    at least 1 dB inside it, because the window, not the LUFS, is what the store checks.
    Raises MasteringError for silent audio (nothing to steer by).
    """
    if not math.isfinite(m.lufs) or not math.isfinite(m.rms_db):
        raise MasteringError("audio is silent; nothing to master")
    gain = preset.target_lufs - m.lufs
    if preset.rms_min_db is not None and preset.rms_max_db is not None:
        lo, hi = preset.rms_min_db + 1.0, preset.rms_max_db - 1.0
        rms = m.rms_db + gain
        if rms < lo:
            gain += lo - rms
        elif rms > hi:
            gain -= rms - hi
    return gain


def conform(audio: np.ndarray, sample_rate: int, preset: Preset) -> np.ndarray:
    """Resample to the preset's rate and mix to its channel count; float32.

    Mono to stereo duplicates the channel; stereo to mono averages the two.
    """
    x = as_2d(audio).astype(np.float32, copy=False)  # (N, C)
    if sample_rate != preset.sample_rate:
        if sample_rate <= 0:
            raise MasteringError(f"sample rate must be positive, got {sample_rate}")
        x = soxr.resample(x, sample_rate, preset.sample_rate, quality="HQ").astype(np.float32)
    if x.shape[1] != preset.channels:
        x = np.repeat(x, 2, axis=1) if preset.channels == 2 else x.mean(axis=1, keepdims=True)
    return x[:, 0] if preset.channels == 1 else x


def master(audio: np.ndarray, sample_rate: int, preset: Preset) -> tuple[np.ndarray, Measures]:
    """Master `audio` to `preset`: returns (float32 audio at preset.sample_rate with
    preset.channels — (N,) for mono, (N, 2) for stereo — and the measures of that result).

    The peak target sits `preset.limiter_margin_db` under the preset ceiling to leave room for the
    MP3 encoder's overshoot; `export.deliver_mp3` re-measures the decoded file and corrects.
    Raises MasteringError for silent or malformed audio.
    """
    ceiling = preset.peak_ceiling_db
    target = None if ceiling is None else ceiling - preset.limiter_margin_db
    return master_to(audio, sample_rate, preset, peak_target_db=target, gain_offset_db=0.0)


def master_to(audio: np.ndarray, sample_rate: int, preset: Preset, peak_target_db: float | None,
              gain_offset_db: float = 0.0) -> tuple[np.ndarray, Measures]:
    """`master` with an explicit true-peak target and an extra gain, for the correction loop."""
    x = conform(audio, sample_rate, preset)
    sr = preset.sample_rate
    gain_db = decide_gain_db(measure(x, sr), preset) + gain_offset_db
    for _ in range(_MAX_PASSES):
        y = x * np.float32(10.0 ** (gain_db / 20.0))
        if peak_target_db is not None:
            y = limit_to(y, sr, peak_target_db, preset)
        out = measure(y, sr)
        # Limiting lowers the loudness a little; make it up and limit again until on target.
        makeup = decide_gain_db(out, preset) + gain_offset_db
        if abs(makeup) < 0.05:
            break
        gain_db += makeup
    log.debug("mastered %s: gain %+.2f dB -> %s", preset.name, gain_db, out)
    return y, out


def limit_to(audio: np.ndarray, sample_rate: int, ceiling_db: float, preset: Preset) -> np.ndarray:
    """Limit until the true peak is at or under `ceiling_db` (float32, same shape)."""
    y = np.asarray(audio, dtype=np.float32)
    aim = ceiling_db
    for _ in range(_MAX_PASSES):
        y = limit(y, sample_rate, aim, preset.limiter_lookahead_ms, preset.limiter_release_db_per_s)
        excess = true_peak_db(y, sample_rate) - ceiling_db
        if excess <= 0.0:
            return y
        aim -= excess + 0.05
    # Still over after the passes (pathological material): a plain gain is exact.
    excess = true_peak_db(y, sample_rate) - ceiling_db
    if excess > 0.0:
        y = y * np.float32(10.0 ** (-(excess + 0.01) / 20.0))
    return y
