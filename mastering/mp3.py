"""MP3 encoding as a stream: float blocks in, LAME CBR frames out to a file, gapless Info frame first.

lameenc wants 16-bit PCM and an explicit output rate. Blocks are dithered to 16 bits (seeded TPDF,
one generator for the whole stream, so a file is the same whether encoded in one piece or many),
encoded, and written as they come; the Info frame (`gapless`) needs the final frame count and size,
so a placeholder of its fixed length is written first and filled in at the end. Memory: one block.
"""
from __future__ import annotations

import io
import subprocess
import sys
import threading
from typing import BinaryIO

import lameenc
import numpy as np

from mastering.errors import MasteringError

from .gapless import _parse_header, info_frame
from .presets import Preset
from .signal import as_2d


class Dither:
    """Float [-1, 1] → int16 with seeded TPDF dither (±1 LSB), one generator across blocks.

    Dither keeps the room tone a noise rather than a quantisation pattern; the seed keeps
    re-renders bit-identical.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio, dtype=np.float32)
        # Two uniform 16-bit draws per sample from one 32-bit draw (4x cheaper than two float
        # draws); their difference is triangular on (−1, 1) LSB.
        pairs = self._rng.integers(0, 2**32, size=x.size, dtype=np.uint32).view(np.uint16).reshape(-1, 2)
        tpdf = pairs[:, 0].astype(np.float32)
        tpdf -= pairs[:, 1]
        tpdf *= np.float32(1.0 / 65536.0)
        y = x.reshape(-1) * np.float32(32767.0)
        y += tpdf
        np.rint(y, out=y)
        np.clip(y, -32768, 32767, out=y)
        return y.astype(np.int16).reshape(x.shape)


def to_pcm16(audio: np.ndarray, seed: int = 0) -> np.ndarray:
    """One array to int16 with its own seeded dither (see `Dither`), same shape."""
    return Dither(seed)(audio)


class Mp3Writer:
    """Encode (n, preset.channels) float32 blocks at the preset's rate into `fh` (readable too: the
    frames are counted back from it) as CBR MP3.

    `in_process=False` runs LAME in a child process (`lame_pipe`): it then encodes in parallel with
    the caller's mastering and with other threads' chapters (in-process LAME holds the GIL). Short
    audio (excerpts, tests) is encoded in-process. Call `write` for every block, then `finish`
    (returns the number of samples written). Raises MasteringError when LAME fails or produces
    nothing; a writer not finished must be `close`d (kills the child).
    """

    def __init__(self, fh: BinaryIO, preset: Preset, seed: int = 0, in_process: bool = True) -> None:
        self.fh, self.preset = fh, preset
        self._start = fh.tell()
        self._frame_len = 144000 * preset.mp3_bitrate_kbps // preset.sample_rate
        fh.write(bytes(self._frame_len))  # placeholder for the Info frame (no padding slot)
        fh.flush()
        self._dither = Dither(seed)
        self.samples = 0
        self._enc = _InProcess(preset) if in_process else _ChildProcess(preset, fh)

    def write(self, block: np.ndarray) -> None:
        x = as_2d(block)
        if x.shape[1] != self.preset.channels:
            raise MasteringError(f"MP3 stream is {self.preset.channels}-channel, got {x.shape[1]}")
        if not len(x):
            return
        data = self._enc.encode(self._dither(x).tobytes())
        if data:
            self.fh.write(data)
        self.samples += len(x)

    def finish(self) -> int:
        """Flush the encoder and fill in the Info frame; returns the samples per channel."""
        tail = self._enc.flush()
        if tail:
            self.fh.write(tail)
        end = self.fh.seek(0, 2)
        body_at = self._start + self._frame_len
        self.fh.seek(body_at)
        first = self.fh.read(4)
        if not self.samples or len(first) < 4:
            raise MasteringError("cannot encode empty audio")
        frames = _count_frames(self.fh, body_at, end - body_at)
        frame = info_frame(first, self.samples, self.preset.sample_rate, self.preset.channels,
                           self.preset.mp3_bitrate_kbps, frames=frames, body_size=end - body_at)
        self.fh.seek(self._start)
        self.fh.write(frame)
        self.fh.seek(end)
        return self.samples

    def close(self) -> None:
        self._enc.close()


class _InProcess:
    def __init__(self, preset: Preset) -> None:
        self._enc = lameenc.Encoder()
        try:
            self._enc.set_bit_rate(preset.mp3_bitrate_kbps)
            self._enc.set_in_sample_rate(preset.sample_rate)
            self._enc.set_out_sample_rate(preset.sample_rate)
            self._enc.set_channels(preset.channels)
            self._enc.set_quality(preset.mp3_quality)
        except RuntimeError as exc:
            raise MasteringError(f"MP3 encoder rejected the settings ({exc})") from exc

    def encode(self, pcm: bytes) -> bytes:
        try:
            return bytes(self._enc.encode(pcm))
        except RuntimeError as exc:
            raise MasteringError(f"MP3 encoder failed ({exc})") from exc

    def flush(self) -> bytes:
        try:
            return bytes(self._enc.flush())
        except RuntimeError as exc:
            raise MasteringError(f"MP3 encoder failed ({exc})") from exc

    def close(self) -> None:
        return None


class _ChildProcess:
    """LAME in `python -m mastering.lame_pipe`; a reader thread appends its output to `fh` (the
    only writer of `fh` until `flush` returns)."""

    def __init__(self, preset: Preset, fh: BinaryIO) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mastering.lame_pipe", str(preset.mp3_bitrate_kbps), str(preset.sample_rate),
             str(preset.channels), str(preset.mp3_quality)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._error: BaseException | None = None

        def pump() -> None:
            assert self._proc.stdout is not None
            try:
                while chunk := self._proc.stdout.read(1 << 16):
                    fh.write(chunk)
            except BaseException as exc:  # reported by flush
                self._error = exc

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()

    def encode(self, pcm: bytes) -> bytes:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(pcm)
        except BrokenPipeError:
            self.flush()  # raises with the encoder's own message
        return b""

    def flush(self) -> bytes:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        self._reader.join()
        code = self._proc.wait()
        if code != 0 or self._error is not None:
            err = self._proc.stderr.read().decode("utf-8", "replace").strip().splitlines() if self._proc.stderr else []
            raise MasteringError(f"MP3 encoder failed ({err[-1] if err else self._error or f'status {code}'})")
        return b""

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)


def _count_frames(fh: BinaryIO, offset: int, size: int) -> int:
    """Number of MP3 frames in `size` bytes of `fh` at `offset`, read 4 MiB at a time."""
    frames, pos = 0, 0
    buf, buf_at = b"", 0
    while pos + 4 <= size:
        if pos + 4 > buf_at + len(buf):
            fh.seek(offset + pos)
            buf, buf_at = fh.read(min(1 << 22, size - pos)), pos
        pos += _parse_header(buf[pos - buf_at:pos - buf_at + 4])[2]
        frames += 1
    if pos != size:
        raise MasteringError("encoder output ends with a partial MP3 frame")
    return frames


def encode_mp3(audio: np.ndarray, sample_rate: int, preset: Preset, seed: int = 0) -> bytes:
    """CBR MP3 bytes of an array at the preset's bitrate, rate and channel count, with a gapless
    Info frame first. Audio at another rate or channel count is converted first.
    Raises MasteringError."""
    from .master import conform

    x = conform(audio, sample_rate, preset)
    buf = io.BytesIO()
    writer = Mp3Writer(buf, preset, seed)
    writer.write(x)
    writer.finish()
    return buf.getvalue()
