"""Deterministic speech-like test audio, for tests, benchmarks and `bookcast qc` smoke checks.

Real narration differs from test tones in the ways that matter to mastering: a crest factor of
15–20 dB, syllable-rate amplitude modulation, voiced harmonics with a moving pitch, unvoiced noise
bursts, and pauses. This generator has all of them, cheaply and reproducibly (seeded), so loudness,
limiting and encoding can be exercised without shipping recordings.
"""
from __future__ import annotations

import numpy as np
import scipy.signal as ss


def _fricative_sos(sample_rate: int) -> np.ndarray:
    high = min(9000.0, 0.45 * sample_rate)
    return ss.butter(4, [2500.0, high], "bandpass", fs=sample_rate, output="sos")


def speech_like(duration_s: float, sample_rate: int = 44100, seed: int = 0,
                level_db: float = -20.0) -> np.ndarray:
    """Mono float32 (N,) of "sentences" (1.5–4 s of syllables) separated by 0.3–1 s pauses,
    scaled so the speech parts have roughly `level_db` dBFS RMS. Pauses are digital silence."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    out = np.zeros(n, dtype=np.float32)
    pos = int(0.2 * sample_rate)
    while pos < n:
        sent = int(rng.uniform(1.5, 4.0) * sample_rate)
        stop = min(n, pos + sent)
        length = stop - pos
        if length <= 0:
            break
        t = np.arange(length) / sample_rate
        f0 = rng.uniform(95, 210) * (1.0 + 0.12 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate  # (L,)
        # Harmonics with random phases: a glottal pulse train's spectrum without its extreme
        # crest factor (real speech peaks 15–20 dB over its loudness, not 25).
        voiced = sum((0.8 ** k) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
                     for k in range(1, 16))
        # Two formant-like resonances over the harmonic stack.
        for fc in (rng.uniform(500, 800), rng.uniform(1200, 2200)):
            b, a = ss.iirpeak(fc, 4.0, fs=sample_rate)
            voiced = voiced + 2.0 * ss.lfilter(b, a, voiced)
        # Fricatives: noise in the 2.5–9 kHz band where "s" and "sh" live; speech has little
        # energy above that, which is also what MP3 encoders cut.
        noise = ss.sosfilt(_fricative_sos(sample_rate), rng.standard_normal(length))
        syll_rate = rng.uniform(3.5, 5.5)
        syll = np.maximum(np.sin(2 * np.pi * syll_rate * t + rng.uniform(0, np.pi)), 0.0) ** 1.5
        accents = np.interp(t, np.linspace(0, t[-1], 12), rng.uniform(0.4, 1.0, 12))
        fricative = (rng.random(length // 400 + 1) < 0.15).repeat(400)[:length]
        sig = voiced * syll * accents + 0.25 * noise * fricative * accents
        fade = min(length // 2, int(0.02 * sample_rate))
        if fade:
            sig[:fade] *= np.linspace(0, 1, fade)
            sig[-fade:] *= np.linspace(1, 0, fade)
        rms = float(np.sqrt(np.mean(sig ** 2))) or 1.0
        out[pos:stop] = sig * (10 ** (level_db / 20) / rms)
        pos = stop + int(rng.uniform(0.3, 1.0) * sample_rate)
    return out
