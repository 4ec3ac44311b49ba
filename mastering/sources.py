"""Chapter audio as a stream of blocks, so whole-book files never hold a book in memory.

A source is a mastered array (at a known rate) or a file (WAV, FLAC, MP3 through libsndfile; any
other format through the bundled ffmpeg). Blocks come out float32 `(n, channels)` at the requested
rate and channel count; the caller counts samples, which makes chapter times exact.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Union

import numpy as np
import soundfile as sf
import soxr

from ingest.errors import InputError

from .ffmpeg import ffmpeg_blocks
from .signal import as_2d
from .signal import mix as _mix

AudioSource = Union[str, Path, np.ndarray]

_BLOCK = 1 << 18


def _array_blocks(audio: np.ndarray, source_rate: int, sample_rate: int,
                  channels: int) -> Iterator[np.ndarray]:
    x = _mix(as_2d(audio).astype(np.float32, copy=False), channels)
    if source_rate != sample_rate:
        x = soxr.resample(x, source_rate, sample_rate, quality="HQ").astype(np.float32)
    for start in range(0, x.shape[0], _BLOCK):
        yield x[start:start + _BLOCK]


def count_samples(source: AudioSource, sample_rate: int, channels: int,
                  source_rate: int | None = None) -> int:
    """Length of `source` in samples at `sample_rate`, as `iter_blocks` will yield it.

    WAV and FLAC at the target rate are read from the header; anything else is streamed once.
    """
    if not isinstance(source, np.ndarray):
        try:
            info = sf.info(str(source))
        except (sf.LibsndfileError, RuntimeError, OSError):
            info = None
        if info is not None and info.format in ("WAV", "FLAC") and info.samplerate == sample_rate:
            return int(info.frames)
    elif (source_rate or sample_rate) == sample_rate:
        return len(source)
    return sum(len(b) for b in iter_blocks(source, sample_rate, channels, source_rate))


def iter_blocks(source: AudioSource, sample_rate: int, channels: int,
                source_rate: int | None = None) -> Iterator[np.ndarray]:
    """Yield float32 (n, channels) blocks of `source` at `sample_rate`.

    Arrays need `source_rate` (defaults to `sample_rate`). Raises InputError for an unreadable
    file.
    """
    if isinstance(source, np.ndarray):
        yield from _array_blocks(source, source_rate or sample_rate, sample_rate, channels)
        return
    path = Path(source)
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError):
        if not path.is_file():
            raise InputError("no such file", path) from None
        rate, _, stream = ffmpeg_blocks(path, _BLOCK)
        yield from _resampled(stream, rate, sample_rate, channels)
        return
    except OSError as exc:
        raise InputError(f"cannot open audio ({exc})", path) from exc
    with f:
        def read() -> Iterator[np.ndarray]:
            while True:
                try:
                    block = f.read(_BLOCK, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise InputError(f"cannot decode audio ({exc})", path) from exc
                if not len(block):
                    return
                yield block

        yield from _resampled(read(), f.samplerate, sample_rate, channels)


def _resampled(stream: Iterator[np.ndarray], rate: int, sample_rate: int, channels: int
               ) -> Iterator[np.ndarray]:
    """(n, C) blocks at `rate` → (n, channels) blocks at `sample_rate`, streaming (soxr keeps
    its filter state between blocks, so the result equals resampling the whole at once)."""
    resampler = (None if rate == sample_rate else
                 soxr.ResampleStream(rate, sample_rate, channels, dtype="float32", quality="HQ"))
    for block in stream:
        block = _mix(block, channels)
        if resampler is not None:
            block = resampler.resample_chunk(block, last=False).reshape(-1, channels)
        if len(block):
            yield block
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros((0, channels), np.float32), last=True).reshape(-1, channels)
        if len(tail):
            yield tail
