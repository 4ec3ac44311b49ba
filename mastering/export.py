"""MP3 delivery: master, encode, decode the MP3 again, re-measure, and correct the gain or the peak
target if the encoder moved the levels out of the preset (MP3's band-limiting and quantisation
raise true peaks by a few tenths of a dB and lower the loudness a little).

Everything streams: the mastered audio goes block by block into the encoder and straight into a
temporary file beside the destination, which is then decoded block by block into a `Meter`. A
three-hour chapter costs the same memory as a three-minute one.
"""
from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from ingest.errors import InputError, raise_if_stopped
from mastering.errors import MasteringError

from .files import atomic_path
from .loudness import Measures, integrated_lufs
from .master import Mastering, conform
from .meter import Meter
from .mp3 import Mp3Writer, encode_mp3, to_pcm16  # noqa: F401  (encode_mp3, to_pcm16 re-exported)
from .presets import Preset
from .signal import BLOCK, ArraySignal, Signal, as_2d
from .tags import ChapterMark, Tags, write_id3

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 4
_IN_PROCESS_FRAMES = 30 * 44100  # shorter audio is encoded in this process (a child costs ~0.1 s)


def as_signal(audio: np.ndarray | Signal, sample_rate: int, preset: Preset) -> Signal:
    """A Signal at the preset's rate: arrays are conformed (resampled, mixed) first; a Signal
    must already be at the preset's rate (chapters are stitched at it)."""
    if hasattr(audio, "read"):
        return audio  # type: ignore[return-value]
    return ArraySignal(conform(audio, sample_rate, preset), preset.sample_rate)  # type: ignore[arg-type]


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
    """Decode a whole (short) file libsndfile reads (WAV, FLAC, MP3, Ogg) to float32 (N,) or
    (N, C); long files go through `decode_blocks`. Raises InputError naming the file."""
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputError(f"cannot decode audio ({exc})", path) from exc
    return audio, int(sr)


def decode_mp3_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Decode MP3 bytes in memory (short excerpts). Raises MasteringError."""
    try:
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise MasteringError(f"cannot decode the MP3 just encoded ({exc})") from exc
    return audio, int(sr)


def measure_file(path: str | Path, edges: bool = False, true_peak: bool = True) -> Meter:
    """A Meter fed with the decoded file, block by block (bounded memory for any length);
    `true_peak=False` skips oversampling (its true peak then reads NaN).
    Raises InputError when libsndfile cannot decode it."""
    try:
        with sf.SoundFile(str(path)) as f:
            meter = Meter(f.samplerate, f.channels, edges, true_peak)
            for block in f.blocks(BLOCK, dtype="float32", always_2d=True):
                raise_if_stopped()
                meter.update(block)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise InputError(f"cannot decode audio ({exc})", path) from exc
    return meter


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


def deliver_mp3(path: str | Path, audio: np.ndarray | Signal, sample_rate: int, preset: Preset,
                tags: Tags, chapters: Sequence[ChapterMark] = (), seed: int = 0, *,
                room_tone: bool = False, work: str | Path | None = None) -> tuple[Path, Measures]:
    """Master `audio` (raw, unmastered: an array at `sample_rate`, or a Signal at the preset's
    rate) to `preset`, encode, decode the MP3 and re-measure; correct and re-encode while the
    decoded file drifted out of the preset (a few attempts). `room_tone` lays the preset's room
    tone under the mastered audio (stitched narration); `work` is where long audio spills
    (None: in memory).

    Returns the path and the measures of the decoded MP3 — what a store's checker will see.
    Raises MasteringError (silent audio, encoder failure) or OutputError (cannot write).
    """
    ceiling = preset.peak_ceiling_db
    peak_target = None if ceiling is None else ceiling - preset.limiter_margin_db
    bed = preset.room_tone_db if room_tone else None
    with Mastering(as_signal(audio, sample_rate, preset), preset, work) as session, atomic_path(path) as tmp:
        # Aim the first encode at target + the encoder's loss, measured on this chapter's own
        # excerpt (~0.1 CPU-s). Never cached across chapters: the result must not depend on which
        # chapter a worker happened to master first, or reruns would not be byte-identical.
        gain_offset = encoder_level_loss_db(session.excerpt(20.0), preset.sample_rate, preset, seed=seed)
        decoded: Measures | None = None
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            plan = session.plan(gain_offset, peak_target)
            with open(tmp, "w+b") as fh:  # read back to count frames
                writer = Mp3Writer(fh, preset, seed, in_process=session.n < _IN_PROCESS_FRAMES)
                try:
                    for block in session.render(plan, bed, seed):
                        writer.write(block)
                    writer.finish()
                finally:
                    writer.close()
            try:
                # Oversampling the decoded file costs a third of this check; only a preset with a
                # true-peak rule needs it (ACX checks sample peaks).
                decoded = measure_file(tmp, true_peak=preset.true_peak_ceiling_db is not None).measures()
            except InputError as exc:
                raise MasteringError(f"cannot decode the MP3 just encoded ({exc})", path) from exc
            gain, excess = drift(decoded, preset)
            log.debug("attempt %d: decoded %s (gain %+.2f, peak excess %+.2f)", attempt, decoded, gain, excess)
            if abs(gain) < 1e-9 and excess <= 0.0:
                break
            gain_offset += gain
            if peak_target is not None and excess > -0.05:
                peak_target -= max(excess, 0.0) + 0.1
        else:
            log.warning("%s: decoded MP3 still off the %s preset after %d attempts: %s", path,
                        preset.name, _MAX_ATTEMPTS, decoded)
        assert decoded is not None
        write_id3(tmp, tags, chapters)
    return Path(path), decoded
