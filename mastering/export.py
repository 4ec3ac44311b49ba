"""MP3 encoding and delivery: float audio → 16-bit PCM → LAME CBR → ID3 tag → atomic file.

`write_mp3` encodes what it is given. `deliver_mp3` is the whole contract: master, encode, decode
the MP3 again, re-measure, and correct the gain or the peak target if the encoder moved the levels
out of the preset (MP3's band-limiting and quantisation raise true peaks by a few tenths of a dB).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import lameenc
import numpy as np
import soundfile as sf

from ingest.errors import InputError, MasteringError

from .files import atomic_path
from .gapless import info_frame
from .loudness import Measures, as_2d, integrated_lufs, measure
from .master import Mastering, conform
from .presets import Preset
from .tags import ChapterMark, Tags, write_id3

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 4


def to_pcm16(audio: np.ndarray, seed: int = 0) -> np.ndarray:
    """Float [-1, 1] → int16 with seeded TPDF dither (±1 LSB), same shape.

    Dither keeps the room tone a noise rather than a quantisation pattern; the seed keeps
    re-renders bit-identical.
    """
    x = np.asarray(audio, dtype=np.float32)
    rng = np.random.default_rng(seed)
    # Two uniform 16-bit draws per sample from one 32-bit draw (4x cheaper than two float draws);
    # their difference is triangular on (−1, 1) LSB.
    pairs = rng.integers(0, 2**32, size=x.size, dtype=np.uint32).view(np.uint16).reshape(-1, 2)
    tpdf = pairs[:, 0].astype(np.float32)
    tpdf -= pairs[:, 1]
    tpdf *= np.float32(1.0 / 65536.0)
    y = x.reshape(-1) * np.float32(32767.0)
    y += tpdf
    np.rint(y, out=y)
    np.clip(y, -32768, 32767, out=y)
    return y.astype(np.int16).reshape(x.shape)


def encode_mp3(audio: np.ndarray, sample_rate: int, preset: Preset, seed: int = 0) -> bytes:
    """CBR MP3 bytes at the preset's bitrate, rate and channel count, with a gapless Info frame
    (encoder delay and padding) first so decoders drop LAME's priming samples.

    Audio at another rate or channel count is converted first. Raises MasteringError.
    """
    x = conform(audio, sample_rate, preset)
    if x.size == 0:
        raise MasteringError("cannot encode empty audio")
    pcm = to_pcm16(x, seed)
    enc = lameenc.Encoder()
    try:
        enc.set_bit_rate(preset.mp3_bitrate_kbps)
        enc.set_in_sample_rate(preset.sample_rate)
        enc.set_out_sample_rate(preset.sample_rate)
        enc.set_channels(preset.channels)
        enc.set_quality(preset.mp3_quality)
        body = bytes(enc.encode(pcm.tobytes())) + bytes(enc.flush())
    except RuntimeError as exc:
        raise MasteringError(f"MP3 encoder failed ({exc})") from exc
    return info_frame(body, num_samples=len(pcm), sample_rate=preset.sample_rate,
                      channels=preset.channels, bitrate_kbps=preset.mp3_bitrate_kbps) + body


def write_mp3(path: str | Path, audio: np.ndarray, sample_rate: int, preset: Preset, tags: Tags,
              chapters: Sequence[ChapterMark] = (), seed: int = 0) -> Path:
    """Encode `audio` (already mastered) as the preset's MP3 and tag it; written atomically.

    Raises MasteringError (encoding, tagging) or OutputError (the file cannot be written).
    """
    data = encode_mp3(audio, sample_rate, preset, seed)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        write_id3(tmp, tags, chapters)
    log.info("wrote %s (%.1f s, %d kbps)", path, len(as_2d(audio)) / sample_rate,
             preset.mp3_bitrate_kbps)
    return Path(path)


def decode(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode any audio file libsndfile reads (WAV, FLAC, MP3, Ogg) to float32 (N,) or (N, C).

    Raises InputError naming the file when it is missing or not decodable.
    """
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputError(f"cannot decode audio ({exc})", path) from exc
    return audio, int(sr)


def decode_mp3_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Decode MP3 bytes in memory (for the re-measure loop). Raises MasteringError."""
    import io

    try:
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise MasteringError(f"cannot decode the MP3 just encoded ({exc})") from exc
    return audio, int(sr)


def drift(m: Measures, preset: Preset) -> tuple[float, float]:
    """(gain correction dB, peak excess dB) that would bring decoded measures back in the preset.

    Gain: toward the LUFS target when off by more than a quarter of the tolerance, and into the
    RMS window (with 0.5 dB margin). Peak excess: how far the decoded peaks exceed the ceilings.
    """
    gain = 0.0
    if preset.lufs_tolerance_lu is not None and math.isfinite(m.lufs):
        off = preset.target_lufs - m.lufs
        if abs(off) > preset.lufs_tolerance_lu / 4:
            gain = off
    if preset.rms_min_db is not None and preset.rms_max_db is not None:
        if m.rms_db + gain < preset.rms_min_db + 0.5:
            gain = preset.rms_min_db + 0.5 - m.rms_db
        elif m.rms_db + gain > preset.rms_max_db - 0.5:
            gain = preset.rms_max_db - 0.5 - m.rms_db
    excess = -math.inf
    if preset.sample_peak_ceiling_db is not None:
        excess = max(excess, m.sample_peak_db - preset.sample_peak_ceiling_db)
    if preset.true_peak_ceiling_db is not None:
        excess = max(excess, m.true_peak_db - preset.true_peak_ceiling_db)
    return gain, excess


def encoder_level_loss_db(audio: np.ndarray, sample_rate: int, preset: Preset,
                         excerpt_s: float = 20.0, seed: int = 0) -> float:
    """How much quieter (LUFS) the preset's MP3 encoding makes this audio: measured on an
    excerpt from the middle, so the first full encode can already be aimed right.

    MP3's quantiser rounds coefficients towards zero, a level loss that grows as the bitrate
    falls (about 0.45 LU at 128 kbps mono, 0.25 at 192, none at 320) and is nearly the same for
    any speech at any level, so a short excerpt predicts the whole file. Returns 0.0 when the
    excerpt is silent.
    """
    x = conform(audio, sample_rate, preset)
    n = len(x)
    span = min(n, int(excerpt_s * preset.sample_rate))
    part = x[(n - span) // 2:(n - span) // 2 + span]
    peak = float(np.max(np.abs(part))) if span else 0.0
    if peak <= 0.0:
        return 0.0
    part = part * np.float32(min(1.0, 0.7 / peak))  # well clear of clipping in the encoder
    before = integrated_lufs(part, preset.sample_rate)
    decoded, dsr = decode_mp3_bytes(encode_mp3(part, preset.sample_rate, preset, seed))
    after = integrated_lufs(decoded, dsr)
    if not (math.isfinite(before) and math.isfinite(after)):
        return 0.0
    return before - after


def deliver_mp3(path: str | Path, audio: np.ndarray, sample_rate: int, preset: Preset,
                tags: Tags, chapters: Sequence[ChapterMark] = (), seed: int = 0
                ) -> tuple[Path, Measures]:
    """Master `audio` (raw, unmastered) to `preset`, encode, decode the MP3 and re-measure;
    correct and re-encode while the decoded file drifted out of the preset (a few attempts).

    Returns the path and the measures of the decoded MP3 — what a store's checker will see.
    Raises MasteringError (silent audio, encoder failure) or OutputError (cannot write).
    """
    ceiling = preset.peak_ceiling_db
    peak_target = None if ceiling is None else ceiling - preset.limiter_margin_db
    session = Mastering(audio, sample_rate, preset)
    # Aim the first encode at target + the encoder's loss, measured on an excerpt.
    gain_offset = encoder_level_loss_db(session.x, preset.sample_rate, preset, seed=seed)
    data = b""
    decoded_m: Measures | None = None
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        mastered, _ = session.render_audio(gain_offset, peak_target, verify=False)
        data = encode_mp3(mastered, preset.sample_rate, preset, seed)
        decoded, dsr = decode_mp3_bytes(data)
        decoded_m = measure(decoded, dsr)
        gain, excess = drift(decoded_m, preset)
        log.debug("attempt %d: decoded %s (gain %+.2f, peak excess %+.2f)", attempt, decoded_m,
                  gain, excess)
        if abs(gain) < 1e-9 and excess <= 0.0:
            break
        gain_offset += gain
        if peak_target is not None and excess > -0.05:
            peak_target -= max(excess, 0.0) + 0.1
    else:
        log.warning("%s: decoded MP3 still off the %s preset after %d attempts: %s", path,
                    preset.name, _MAX_ATTEMPTS, decoded_m)
    assert decoded_m is not None
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        write_id3(tmp, tags, chapters)
    return Path(path), decoded_m
