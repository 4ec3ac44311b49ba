"""The bundled ffmpeg binary (imageio-ffmpeg wheel): run it, decode with it, read what it reports.

There is no ffprobe in the wheel, so `probe` parses the report `ffmpeg -i FILE` prints on stderr:
duration, the audio stream (rate, layout, codec) and chapters with their titles. That text is
stable across ffmpeg releases for these lines, and the tests read our own M4B files back with it.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ingest.errors import InputError
from mastering.errors import MasteringError

_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "1 channels": 1, "2 channels": 2}


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg. Raises MasteringError when the wheel has none for this OS."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise MasteringError(f"no ffmpeg binary available ({exc})") from exc


@dataclass(frozen=True)
class ProbedChapter:
    title: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Probe:
    """What `ffmpeg -i` says about a file."""

    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    codec: str
    bitrate_kbps: int | None
    has_cover: bool
    chapters: list[ProbedChapter] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_AUDIO = re.compile(
    r"Stream #\d+:\d+.*?: Audio: (\w+).*?, (\d+) Hz, ([^,]+)(?:, \w+)?(?:, (\d+) kb/s)?")
_CHAPTER = re.compile(r"Chapter #\d+:\d+: start (-?[\d.]+), end (-?[\d.]+)")
_META = re.compile(r"^\s+(\w+)\s*: (.*)$")


def parse_report(text: str) -> Probe:
    """Parse the stderr of `ffmpeg -i FILE` (input section only)."""
    lines = text.splitlines()
    try:  # ignore the output section of a transcode
        lines = lines[:next(i for i, l in enumerate(lines) if l.startswith("Output #"))]
    except StopIteration:
        pass
    duration = rate = channels = bitrate = None
    codec = ""
    has_cover = False
    chapters: list[ProbedChapter] = []
    tags: dict[str, str] = {}
    section = "header"  # header | chapter | stream
    for line in lines:
        if m := _DURATION.search(line):
            duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
        elif m := _CHAPTER.search(line):
            chapters.append(ProbedChapter("", float(m[1]), float(m[2])))
            section = "chapter"
        elif "Stream #" in line:
            section = "stream"
            if (m := _AUDIO.search(line)) and rate is None:
                codec, rate = m[1], int(m[2])
                channels = _LAYOUT_CHANNELS.get(m[3].strip().split("(")[0].strip())
                bitrate = int(m[4]) if m[4] else None
            if "Video:" in line and "attached pic" in line:
                has_cover = True
        elif (m := _META.match(line)) and m[1] != "Metadata":
            key, value = m[1].strip(), m[2].strip()
            if section == "chapter" and key == "title" and chapters:
                last = chapters[-1]
                chapters[-1] = ProbedChapter(value, last.start_s, last.end_s)
            elif section == "header":
                tags.setdefault(key, value)
    return Probe(duration, rate, channels, codec, bitrate, has_cover, chapters, tags)


def probe(path: str | Path) -> Probe:
    """Read duration, audio format, cover presence, chapters and tags of a media file.

    Raises InputError when the file is missing or ffmpeg cannot open it.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", p)
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)],
                          capture_output=True, check=False)
    text = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in text:
        raise InputError("ffmpeg cannot read this file", p)
    return parse_report(text)


def decode_with_ffmpeg(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole (short) file ffmpeg reads (M4B/AAC included) to float32 (N,) or (N, C) at
    its own rate; long files go through `ffmpeg_blocks`. Raises InputError for unreadable files."""
    rate, channels, stream = ffmpeg_blocks(path)
    parts = list(stream)
    audio = np.concatenate(parts) if parts else np.zeros((0, channels), np.float32)
    return (audio[:, 0] if channels == 1 else audio), rate


def ffmpeg_blocks(path: str | Path, frames: int = 1 << 18) -> tuple[int, int, Iterator[np.ndarray]]:
    """(rate, channels, blocks): the file decoded by ffmpeg as float32 (n, channels) blocks,
    streamed through a pipe, so a 20-hour M4B is checked in the memory of one block. The ffmpeg
    process ends with the iterator (closing it early kills ffmpeg). Raises InputError."""
    info = probe(path)
    if info.sample_rate is None or info.channels is None:
        raise InputError("no audio stream ffmpeg can decode", path)
    channels = info.channels

    def blocks() -> Iterator[np.ndarray]:
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0",
                 "-f", "f32le", "-acodec", "pcm_f32le", "-"], stdout=subprocess.PIPE, stderr=err)
            assert proc.stdout is not None
            try:
                width = 4 * channels
                while True:
                    data = proc.stdout.read(frames * width)
                    if not data:
                        break
                    usable = len(data) // width * width
                    if usable < len(data):  # a partial frame at the very end: ffmpeg never writes one
                        data = data[:usable]
                    yield np.frombuffer(data, np.float32).reshape(-1, channels)
            finally:
                proc.stdout.close()
                if proc.poll() is None:
                    proc.kill()
                code = proc.wait()
            if code != 0:
                raise InputError("ffmpeg could not decode the audio", path)

    return info.sample_rate, channels, blocks()
