"""Level measurements on arrays: integrated loudness, unweighted RMS, sample peak, noise floor
(true peak lives in `truepeak`, streaming measurement of long audio in `meter`).

Pure, vectorised numpy on `(samples,)` or `(samples, channels)` float arrays in [-1, 1]. The
integrated loudness follows ITU-R BS.1770-4 §2 exactly like pyloudnorm (the test oracle) but with
the gating blocks summed from 100 ms hops instead of a Python loop over blocks, which is ~10× faster
on a chapter. These functions take whole arrays: use them on clips and excerpts, and `meter.Meter`
on a chapter or a file of unbounded length.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import scipy.signal as ss

from .signal import as_2d
from .truepeak import true_peak_db, true_peak_envelope  # noqa: F401  (re-exported)

_ABS_GATE_LUFS = -70.0  # BS.1770-4 §2.7, Γa
_REL_GATE_LU = -10.0  # BS.1770-4 §2.7, Γr relative to the absolute-gated loudness
_BLOCK_S = 0.4  # gating block Tg
_STEP = 0.25  # 75 % overlap between blocks


def _db(power_or_amp: float, power: bool) -> float:
    if power_or_amp <= 0.0:
        return -math.inf
    return (10.0 if power else 20.0) * math.log10(power_or_amp)


# ---- K-weighting (BS.1770-4 §2.1, Tables 1 and 2) ----------------------------------------------
# The standard gives biquad coefficients at 48 kHz only. These analog parameters (shelf gain, Q and
# corner frequency; high-pass Q and corner) reproduce them to within 1e-7 and let us derive the
# filters at any rate via the bilinear transform (the same derivation pyloudnorm uses).
_SHELF_GAIN_DB, _SHELF_Q, _SHELF_FC = 3.99984385397, 0.7071752369554193, 1681.9744509555319
_HP_Q, _HP_FC = 0.5003270373253953, 38.13547087613982


@lru_cache(maxsize=8)
def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """Second-order sections (2, 6) of the K-weighting pre-filter: high shelf then high-pass."""
    k = math.tan(math.pi * _SHELF_FC / sample_rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh ** 0.4996667741545416  # band gain ratio of the standard's shelf
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [(vh + vb * k / _SHELF_Q + k * k) / a0, 2.0 * (k * k - vh) / a0,
             (vh - vb * k / _SHELF_Q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _SHELF_Q + k * k) / a0]
    k = math.tan(math.pi * _HP_FC / sample_rate)
    a0 = 1.0 + k / _HP_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HP_Q + k * k) / a0]
    return np.array([shelf, highpass])


def weighted_power(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """K-weighted instantaneous power summed over channels, (N,) float32 (BS.1770-4 §2.1–2.3).

    Channel weights G are 1.0 for left/right/centre (Table 3); we only carry 1 or 2 channels.
    float32 filtering is 4× faster than float64 and agrees to ~0.001 LU; every sum over it is
    accumulated in float64.
    """
    x = as_2d(audio)
    sos = k_weighting_sos(sample_rate).astype(np.float32)
    weighted = ss.sosfilt(sos, x.astype(np.float32, copy=False), axis=0)  # (N, C)
    if weighted.shape[1] == 1:
        return np.square(weighted[:, 0])
    return np.square(weighted).sum(axis=1)


def block_loudness_from_power(power: np.ndarray, sample_rate: int) -> np.ndarray:
    """Loudness (LUFS) of every 400 ms gating block at 75 % overlap, BS.1770-4 eq. 1–4, from
    `weighted_power`. Audio shorter than one block is measured as a single block of its own
    length, so a short clip still gets a number (the standard does not define one)."""
    n = len(power)
    if n == 0:
        return np.empty(0)
    block = int(_BLOCK_S * sample_rate)
    if n < block:
        return np.array([-0.691 + 10.0 * np.log10(max(float(np.mean(power, dtype=np.float64)),
                                                      1e-300))])
    # A block is four 100 ms hops (75 % overlap): sum hops once, then add four at a time.
    # Same blocks as the standard's eq. 3 up to rounding of a hop at rates not divisible by 10.
    hop = block // 4
    hops = power[: n // hop * hop].reshape(-1, hop).sum(axis=1, dtype=np.float64)  # (H,)
    z = np.lib.stride_tricks.sliding_window_view(hops, 4).sum(axis=1) / (4 * hop)  # eq. 1
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(z)  # eq. 4


def block_loudness(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Loudness (LUFS) of every gating block of `audio`; see `block_loudness_from_power`."""
    return block_loudness_from_power(weighted_power(audio, sample_rate), sample_rate)


def lufs_from_hops(hops: np.ndarray, hop: int, frames: int, total: float) -> float:
    """Integrated loudness from K-weighted power summed over 100 ms hops of `hop` frames (the
    partial last hop left out) and the total over all `frames`: gating blocks are four hops.
    Audio shorter than one block is measured as one block of its own length."""
    if frames == 0:
        return -math.inf
    if frames < 4 * hop:
        return gated_lufs(np.array([-0.691 + 10.0 * math.log10(max(total / frames, 1e-300))]))
    z = np.lib.stride_tricks.sliding_window_view(hops, 4).sum(axis=1) / (4 * hop)  # eq. 1
    with np.errstate(divide="ignore"):
        return gated_lufs(-0.691 + 10.0 * np.log10(z))  # eq. 4


def gated_lufs(blocks: np.ndarray) -> float:
    """Integrated loudness from block loudnesses: absolute then relative gate (§2.7, eq. 5–7)."""
    lk = blocks[blocks >= _ABS_GATE_LUFS]
    if lk.size == 0:
        return -math.inf
    # Gating averages block energies, not block dB values (eq. 6).
    gamma_r = -0.691 + 10.0 * np.log10(np.mean(10.0 ** ((lk + 0.691) / 10.0))) + _REL_GATE_LU
    lk = lk[lk > gamma_r]
    return float(-0.691 + 10.0 * np.log10(np.mean(10.0 ** ((lk + 0.691) / 10.0))))


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness in LUFS (BS.1770-4 §2.7); -inf when every block is below −70."""
    return gated_lufs(block_loudness(audio, sample_rate))


def rms_db(audio: np.ndarray) -> float:
    """Unweighted RMS over all samples and channels in dBFS (a full-scale sine reads −3.01)."""
    x = as_2d(audio)
    if x.size == 0:
        return -math.inf
    return _db(float(np.mean(np.square(x, dtype=np.float64))), power=True)


def sample_peak_db(audio: np.ndarray) -> float:
    """Largest absolute sample value in dBFS."""
    x = as_2d(audio)
    return -math.inf if x.size == 0 else _db(float(np.max(np.abs(x))), power=False)


def noise_floor_db(audio: np.ndarray, sample_rate: int, window_s: float = 0.5,
                   hop_s: float = 0.1) -> float:
    """RMS (dBFS) of the quietest `window_s` stretch — the room tone between sentences.

    ACX measures its noise floor on room tone; the quietest half second of a narrated file is
    room tone. Files shorter than one window are measured whole. Digital silence reads −inf.
    """
    x = as_2d(audio)
    n = x.shape[0]
    if n == 0:
        return -math.inf
    win = max(1, int(window_s * sample_rate))
    if n <= win:
        return _db(float(np.mean(np.square(x, dtype=np.float64))), power=True)
    # Sums over hops, then windows as whole numbers of hops: one pass over the samples.
    hop = max(1, int(hop_s * sample_rate))
    per_win = max(1, int(round(window_s / hop_s)))
    if x.shape[1] == 1:
        power = np.square(x[:, 0], dtype=np.float32)  # (N,)
    else:  # mean power over channels, not the power of the mean
        power = np.square(x, dtype=np.float32).mean(axis=1)
    hops = power[: n // hop * hop].reshape(-1, hop).sum(axis=1, dtype=np.float64)  # whole hops
    if len(hops) < per_win:
        return _db(float(power.mean(dtype=np.float64)), power=True)
    sums = np.lib.stride_tricks.sliding_window_view(hops, per_win).sum(axis=1)
    return _db(float(max(sums.min(), 0.0)) / (per_win * hop), power=True)


@dataclass(frozen=True)
class Measures:
    """Every level a preset rule can check, for one file or buffer. A true peak of NaN was not
    measured (a delivery check for a preset without a true-peak rule skips the oversampling)."""

    duration_s: float
    lufs: float
    rms_db: float
    sample_peak_db: float
    true_peak_db: float
    noise_floor_db: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready: values rounded to 0.01; -inf (silence) and NaN (not measured) as None."""
        return {k: (None if not math.isfinite(v) else round(v, 2 if k != "duration_s" else 3))
                for k, v in asdict(self).items()}
