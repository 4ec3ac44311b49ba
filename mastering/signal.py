"""Audio of any length as something read in blocks, so mastering never holds a chapter in memory.

A `Signal` has a length, a rate and a channel count, and answers `read(start, stop)` with float32
`(n, channels)` frames (zeros outside the signal). Mastering makes several passes over a chapter
(measure, estimate, render); each pass reads blocks of `BLOCK` frames, so its memory is a few
blocks whatever the chapter's length.

Sources:
- `ArraySignal`: an array already in memory (tests, short clips, the podcast's segments).
- `Spill`: frames appended once and read back by position — the stitched chapter, written once
  from the clips; in memory while small, else in a float32 file in a work folder.
- `Padded`: a stretch of another signal with silence before and after (a part of a long chapter
  with its own head and tail room).
- `Conformed`: another signal mixed to a channel count (mono chapters delivered as stereo).

Memory: a Spill keeps at most MEMORY_LIMIT bytes; past that it holds nothing but its file handle,
and its file is 4 bytes per frame and channel (635 MB per hour of 44.1 kHz mono), deleted by
`close()`. `Sparse` is the random-access counterpart for values known only on some stretches.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from ingest.errors import OutputError, raise_if_stopped
from mastering.errors import MasteringError

BLOCK = 1 << 18  # frames per block of a pass: 6 s at 44.1 kHz, 1 MiB of float32 mono


class Signal(Protocol):
    sample_rate: int
    channels: int
    frames: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as float32 (stop − start, channels); zeros outside the signal."""
        ...


def as_2d(audio: np.ndarray) -> np.ndarray:
    """View `audio` as (samples, channels). Raises MasteringError for other shapes."""
    a = np.asarray(audio)
    if a.ndim == 1:
        return a[:, None]  # (N, 1)
    if a.ndim == 2 and a.shape[1] in (1, 2):
        return a  # (N, C)
    raise MasteringError(f"audio must be (samples,) or (samples, 1|2), got shape {a.shape}")


def blocks(signal: Signal, start: int = 0, stop: int | None = None, size: int = BLOCK
           ) -> Iterator[tuple[int, np.ndarray]]:
    """(position, frames) for consecutive blocks of `signal` from `start` to `stop`."""
    stop = signal.frames if stop is None else stop
    for pos in range(start, stop, size):
        raise_if_stopped()  # every pass over a chapter goes through here: a stop lands in moments
        yield pos, signal.read(pos, min(pos + size, stop))


def _window(frames: int, start: int, stop: int) -> tuple[int, int, int]:
    """(lo, hi, lead): the part of [start, stop) inside [0, frames), and the zeros before it."""
    lo, hi = max(start, 0), min(stop, frames)
    return lo, max(lo, hi), lo - start


class ArraySignal:
    """An in-memory array as a Signal; (N,) or (N, C) float audio."""

    def __init__(self, audio: np.ndarray, sample_rate: int) -> None:
        if sample_rate <= 0:
            raise MasteringError(f"sample rate must be positive, got {sample_rate}")
        self.audio = as_2d(audio)
        self.sample_rate = int(sample_rate)
        self.channels = self.audio.shape[1]
        self.frames = self.audio.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        lo, hi, lead = _window(self.frames, start, stop)
        if lead == 0 and hi - lo == stop - start:
            return self.audio[lo:hi].astype(np.float32, copy=False)
        out = np.zeros((stop - start, self.channels), np.float32)
        out[lead:lead + hi - lo] = self.audio[lo:hi]
        return out


MEMORY_LIMIT = int(os.environ.get("BOOKCAST_SPILL_MB", "16")) << 20  # bytes a spill keeps in memory before it moves to its file


class Spill:
    """Append-only float32 frames: in memory while small, then in a file under `folder` (deleted
    on close). With no folder they stay in memory whatever their size (short audio, tests).

    Written once (append), then read by position any number of times. Use as a context manager.
    Raises OutputError when the work folder cannot be written (a full disk included).
    """

    def __init__(self, sample_rate: int, channels: int = 1, folder: str | Path | None = None,
                 memory_limit: int = MEMORY_LIMIT) -> None:
        self.sample_rate, self.channels, self.frames = int(sample_rate), channels, 0
        self._folder, self._limit = folder, memory_limit
        self._parts: list[np.ndarray] | None = []
        self._memory: np.ndarray | None = None
        self._fd: int | None = None
        self.path: Path | None = None

    def _to_file(self) -> None:
        """Move what is in memory to a new file in the work folder."""
        try:
            Path(self._folder).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
            fd, name = tempfile.mkstemp(prefix=".spill-", suffix=".f32", dir=self._folder)
        except OSError as exc:
            raise OutputError(f"cannot write the work folder ({exc.strerror or exc})", self._folder) from exc
        self._fd, self.path = fd, Path(name)
        parts, self._parts, self._memory = self._parts or [], None, None
        pos = 0
        for part in parts:
            self._pwrite(part, pos)
            pos += part.shape[0]

    def _pwrite(self, block: np.ndarray, frame: int) -> None:
        assert self._fd is not None, "spill is closed"
        try:
            os.pwrite(self._fd, block.tobytes(), frame * self.channels * 4)
        except OSError as exc:
            raise OutputError(f"cannot write the work folder ({exc.strerror or exc})", self.path) from exc

    def append(self, frames: np.ndarray) -> None:
        block = np.ascontiguousarray(as_2d(frames), dtype=np.float32)
        if block.shape[1] != self.channels:
            raise MasteringError(f"spill holds {self.channels} channel(s), got {block.shape[1]}")
        if self._parts is not None:
            self._parts.append(block.copy())
            self._memory = None
            if self._folder is not None and (self.frames + len(block)) * self.channels * 4 > self._limit:
                self._to_file()
        else:
            self._pwrite(block, self.frames)
        self.frames += block.shape[0]

    def overwrite(self, frame: int, frames: np.ndarray) -> None:
        """Replace frames already appended, starting at `frame`."""
        block = np.ascontiguousarray(as_2d(frames), dtype=np.float32)
        if frame + len(block) > self.frames:
            raise ValueError("overwrite past the end of a spill")  # a programming error
        if self._parts is not None:
            if self._memory is None:
                self._memory = np.concatenate(self._parts) if self._parts else np.zeros((0, self.channels), np.float32)
                self._parts = [self._memory]
            self._memory[frame:frame + len(block)] = block
        else:
            self._pwrite(block, frame)

    def append_zeros(self, n: int) -> None:
        """Append `n` frames of digital silence (pauses), a block at a time."""
        for k in range(0, n, BLOCK):
            self.append(np.zeros((min(BLOCK, n - k), self.channels), np.float32))

    def read(self, start: int, stop: int) -> np.ndarray:
        lo, hi, lead = _window(self.frames, start, stop)
        out = np.zeros((stop - start, self.channels), np.float32)
        if hi <= lo:
            return out
        if self._parts is not None:
            if self._memory is None:
                self._memory = (np.concatenate(self._parts) if self._parts
                                else np.zeros((0, self.channels), np.float32))
                self._parts = [self._memory]
            out[lead:lead + hi - lo] = self._memory[lo:hi]
            return out
        assert self._fd is not None, "spill is closed"
        width = self.channels * 4
        data = os.pread(self._fd, (hi - lo) * width, lo * width)
        out[lead:lead + hi - lo] = np.frombuffer(data, np.float32).reshape(-1, self.channels)
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._parts, self._memory = [], None

    def __enter__(self) -> "Spill":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sparse:
    """`frames` float32 values written by whole grains at any position, zeros where never written.

    Holds the true-peak envelope of the blocks that could reach a ceiling (a few percent of a
    chapter, or most of it). Written grains are appended to a `Spill` (memory while small, else a
    file) and found through a grain → row index, so unwritten stretches cost nothing to keep or to
    read, and the file is contiguous (a sparse file of the chapter's length took a second to delete).
    """

    GRAIN = 1024  # frames per grain

    def __init__(self, frames: int, folder: str | Path | None = None, memory_limit: int = MEMORY_LIMIT) -> None:
        self.frames = frames
        self._rows = np.full(-(-frames // self.GRAIN), -1, np.int64)  # grain → row in the store
        self._store = Spill(1, 1, folder, memory_limit)

    def write(self, start: int, values: np.ndarray) -> None:
        v = np.ascontiguousarray(values, dtype=np.float32)[: max(0, self.frames - start)]
        if start % self.GRAIN or (len(v) % self.GRAIN and start + len(v) != self.frames):
            raise ValueError("Sparse writes cover whole grains")  # a programming error
        g = self.GRAIN
        grains = -(-len(v) // g)
        padded = np.zeros(grains * g, np.float32)
        padded[:len(v)] = v
        g0 = start // g
        rows = self._rows[g0:g0 + grains]
        fresh = rows < 0
        if fresh.all():  # the usual case: a run written once, appended as one piece
            rows[:] = self._store.frames // g + np.arange(grains)
            self._store.append(padded)
            return
        for k in range(grains):  # grains written again (a lower floor): rewrite in place
            if rows[k] < 0:
                rows[k] = self._store.frames // g
                self._store.append(padded[k * g:(k + 1) * g])
            else:
                self._store.overwrite(int(rows[k]) * g, padded[k * g:(k + 1) * g])

    def read(self, start: int, stop: int) -> np.ndarray:
        lo, hi, lead = _window(self.frames, start, stop)
        if hi <= lo:
            return np.zeros(stop - start, np.float32)
        g = self.GRAIN
        g0, g1 = lo // g, -(-hi // g)
        rows = self._rows[g0:g1]
        have = np.flatnonzero(rows >= 0)
        if not have.size:
            return np.zeros(stop - start, np.float32)
        r = rows[have]
        r0, r1 = int(r.min()), int(r.max()) + 1
        if r1 - r0 <= 2 * len(rows):
            # Grains are appended in the order they are screened, so a window's rows are nearly
            # consecutive: one read of their span and one gather (a Python loop per run of rows
            # was a third of the limiter's cost on fragmented speech).
            span = self._store.read(r0 * g, r1 * g)[:, 0].reshape(-1, g)
            grains = np.zeros((g1 - g0, g), np.float32)
            grains[have] = span[r - r0]
            flat = grains.reshape(-1)[lo - g0 * g:hi - g0 * g]
            if lead == 0 and hi == stop:
                return flat
            out = np.zeros(stop - start, np.float32)
            out[lead:lead + hi - lo] = flat
            return out
        out = np.zeros(stop - start, np.float32)
        # Scattered rows (grains rewritten for a lower floor went to the end): one read per run.
        breaks = np.flatnonzero(np.diff(r) != 1) + 1
        for run in np.split(np.arange(len(r)), breaks):
            for a0, a1 in _consecutive(have[run]):
                k0, k1 = int(run[a0]), int(run[a1 - 1]) + 1
                f0 = (g0 + int(have[k0])) * g
                data = self._store.read(int(r[k0]) * g, int(r[k1 - 1] + 1) * g)[:, 0]
                a, b = max(lo, f0), min(hi, f0 + len(data))
                out[a - start:b - start] = data[a - f0:b - f0]
        return out

    def close(self) -> None:
        self._store.close()


def _consecutive(values: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) positions of the runs of consecutive integers in `values`."""
    cut = np.flatnonzero(np.diff(values) != 1) + 1
    bounds = [0, *cut.tolist(), len(values)]
    return list(zip(bounds[:-1], bounds[1:]))


class Padded:
    """Frames [start, stop) of `inner` with `head` and `tail` frames of silence around them."""

    def __init__(self, inner: Signal, start: int, stop: int, head: int = 0, tail: int = 0) -> None:
        self.inner, self.start, self.stop, self.head = inner, start, stop, head
        self.sample_rate, self.channels = inner.sample_rate, inner.channels
        self.frames = head + (stop - start) + tail

    def read(self, start: int, stop: int) -> np.ndarray:
        lo, hi, lead = _window(self.frames, start, stop)
        out = np.zeros((stop - start, self.channels), np.float32)
        a, b = max(lo, self.head), min(hi, self.head + self.stop - self.start)
        if b > a:
            out[lead + a - lo:lead + b - lo] = self.inner.read(self.start + a - self.head,
                                                               self.start + b - self.head)
        return out


class Conformed:
    """`inner` mixed to `channels`: mono duplicated to stereo, stereo averaged to mono."""

    def __init__(self, inner: Signal, channels: int) -> None:
        self.inner, self.channels = inner, channels
        self.sample_rate, self.frames = inner.sample_rate, inner.frames

    def read(self, start: int, stop: int) -> np.ndarray:
        return mix(self.inner.read(start, stop), self.channels)


def mix(block: np.ndarray, channels: int) -> np.ndarray:
    """(n, C) → (n, channels): mono to stereo duplicates, stereo to mono averages."""
    if block.shape[1] == channels:
        return block
    if channels == 2:
        return np.repeat(block[:, :1], 2, axis=1)  # (n, 2)
    return block.mean(axis=1, keepdims=True, dtype=np.float32)  # (n, 1)


def conformed(signal: Signal, channels: int) -> Signal:
    return signal if signal.channels == channels else Conformed(signal, channels)
