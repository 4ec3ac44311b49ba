"""Room tone: the quiet noise of a room, laid under a whole chapter so pauses are never digital zero.

Stores reject files whose silences drop to nothing, and listeners hear the floor switching off. The
bed is seeded, gently low-passed noise (a quiet room is darker than white noise), added after
mastering's gain at exactly the preset's room-tone level. It is a 24-second loop read at each
frame's position in the chapter, so any stretch of a chapter of any length is made on demand, the
same every time, without holding or generating the chapter's worth of noise; at −72 dB under
speech a 24-second period is far beyond anything a listener can hear as a repetition.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.signal as ss

LOOP = 1 << 20  # frames in the noise loop (23.8 s at 44.1 kHz)


@lru_cache(maxsize=4)
def _unit_loop(sample_rate: int, seed: int) -> np.ndarray:
    """LOOP frames of noise with RMS 1 (exactly, analytically), low-passed at about 1 kHz."""
    white = np.random.default_rng(seed).standard_normal(LOOP, dtype=np.float32)
    pole = float(np.exp(-2.0 * np.pi * 1000.0 / sample_rate))
    # Unit-variance white noise through (1 − p) / (1 − p·z⁻¹) has variance (1 − p) / (1 + p):
    # scale by the exact expectation rather than the measured value of this one draw.
    scale = 1.0 / np.sqrt((1.0 - pole) / (1.0 + pole))
    b = np.array([(1.0 - pole) * scale], dtype=np.float32)
    a = np.array([1.0, -pole], dtype=np.float32)
    loop = ss.lfilter(b, a, white).astype(np.float32)
    loop.setflags(write=False)
    return loop


def room_tone(start: int, n: int, sample_rate: int, level_db: float, seed: int = 0) -> np.ndarray:
    """Frames [start, start + n) of the room-tone bed at RMS `level_db` dBFS, float32 (n,)."""
    if n <= 0:
        return np.zeros(0, np.float32)
    loop = _unit_loop(sample_rate, seed)
    out = np.empty(n, np.float32)
    pos, filled = start % LOOP, 0
    while filled < n:
        take = min(LOOP - pos, n - filled)
        out[filled:filled + take] = loop[pos:pos + take]
        filled, pos = filled + take, 0
    out *= np.float32(10.0 ** (level_db / 20.0))
    return out
