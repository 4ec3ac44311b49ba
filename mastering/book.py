"""Whole-book files: one M4B (AAC, chapter marks, cover) and one MP3 with ID3 CHAP/CTOC.

Both take the chapters' mastered audio in reading order (arrays or files) and stream them block by
block into the encoder, counting samples, so the chapter marks are exactly where the chapters meet
and a ten-hour book never sits in memory.

M4B: raw float PCM is piped into the bundled ffmpeg, with an ffmetadata file carrying the book tags
and one [CHAPTER] per chapter in milliseconds (TIMEBASE=1/1000), and the cover as an attached
picture; AAC-LC in the `ipod` muxer, which writes the chapter track Apple Books and audiobook apps
read. ffmpeg's AAC edit list hides the encoder priming, so times match the manifest.
"""
from __future__ import annotations

import logging
import math
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ingest.errors import MasteringError

from .ffmpeg import ffmpeg_blocks, ffmpeg_exe
from .files import atomic_path
from .mp3 import Mp3Writer
from .truepeak import PeakTracker
from .presets import Preset
from .sources import AudioSource, count_samples, iter_blocks
from .tags import ChapterMark, Tags, iso639_2, sniff_image_mime, write_id3

log = logging.getLogger(__name__)


def _escape(value: str) -> str:
    """ffmetadata escaping: '=', ';', '#', '\\' and newlines take a backslash."""
    out = []
    for ch in value:
        if ch in "=;#\\\n":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def ffmetadata(tags: Tags, chapters: Sequence[ChapterMark]) -> str:
    """The ffmetadata text: book tags, then one [CHAPTER] block per chapter (milliseconds)."""
    lines = [";FFMETADATA1"]
    fields = {"title": tags.album or tags.title, "album": tags.album or tags.title,
              "artist": tags.artist, "album_artist": tags.artist, "composer": tags.narrator,
              "date": tags.year, "genre": tags.genre, "comment": tags.comment,
              "language": iso639_2(tags.language)}
    lines += [f"{k}={_escape(v)}" for k, v in fields.items() if v]
    for ch in chapters:
        start, end = int(round(ch.start_s * 1000)), int(round(ch.end_s * 1000))
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}",
                  f"title={_escape(ch.title)}"]
    return "\n".join(lines) + "\n"


def _check(sources: Sequence[AudioSource], titles: Sequence[str]) -> None:
    if not sources:
        raise MasteringError("a book needs at least one chapter")
    if len(sources) != len(titles):
        raise MasteringError(f"{len(sources)} chapters but {len(titles)} titles")


def write_m4b(path: str | Path, sources: Sequence[AudioSource], titles: Sequence[str],
              tags: Tags, preset: Preset, source_rate: int | None = None,
              peak_limit_db: float | None = None) -> list[ChapterMark]:
    """Write the whole book as one M4B with chapter marks and cover; atomic.

    `sources` are the chapters' mastered audio (arrays at `source_rate`, or files). Returns the
    chapter marks written (seconds), for the manifest. `peak_limit_db` runs ffmpeg's look-ahead
    limiter before the AAC encoder (which overshoots peaks; see `deliver_m4b`): it touches peaks
    only, so loudness and RMS stay. Raises MasteringError (ffmpeg failed, no chapters) or
    OutputError / InputError.
    """
    _check(sources, titles)
    sr, ch = preset.sample_rate, preset.channels
    with tempfile.TemporaryDirectory(prefix="bookcast-m4b-") as tmpdir, atomic_path(path) as out:
        tmp = Path(tmpdir)
        args = [ffmpeg_exe(), "-hide_banner", "-y", "-f", "f32le", "-ar", str(sr), "-ac", str(ch),
                "-i", "pipe:0", "-i", str(tmp / "meta.txt")]
        maps = ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
        if tags.cover:
            mime = sniff_image_mime(tags.cover, tags.cover_mime)
            cover = tmp / ("cover.png" if mime == "image/png" else "cover.jpg")
            cover.write_bytes(tags.cover)
            args += ["-i", str(cover)]
            maps += ["-map", "2:v", "-c:v", "copy", "-disposition:v:0", "attached_pic"]
        # Chapters are only known once the audio is counted, but ffmpeg reads the metadata file
        # at start-up: count first (cheap for arrays and files alike), then stream.
        counts = [count_samples(s, sr, ch, source_rate) for s in sources]
        marks = _marks(titles, counts, sr)
        (tmp / "meta.txt").write_text(ffmetadata(tags, marks), encoding="utf-8")
        if peak_limit_db is not None:
            limit = 10.0 ** (peak_limit_db / 20.0)
            maps += ["-af", f"alimiter=limit={limit:.6f}:attack=5:release=50:level=0"]
        args += maps + ["-metadata:s:a:0", f"language={iso639_2(tags.language)}",
                        "-c:a", "aac", "-b:a", f"{preset.aac_bitrate_kbps}k",
                        "-movflags", "+faststart", "-f", "ipod", str(out)]
        with open(tmp / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=err)
            assert proc.stdin is not None
            streamed = []
            try:
                for source in sources:
                    n = 0
                    for block in iter_blocks(source, sr, ch, source_rate):
                        proc.stdin.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
                        n += len(block)
                    streamed.append(n)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            finally:
                code = proc.wait()
        if code != 0:
            tail = " | ".join((tmp / "stderr.txt").read_text("utf-8", "replace").splitlines()[-3:])
            raise MasteringError(f"ffmpeg failed to write the M4B: {tail}", path)
        if streamed != counts:  # the chapter marks were written from `counts`
            raise MasteringError("chapter audio changed length while writing the M4B", path)
    log.info("wrote %s (%d chapters, %.1f min)", path, len(marks), marks[-1].end_s / 60)
    return marks


def deliver_m4b(path: str | Path, sources: Sequence[AudioSource], titles: Sequence[str],
                tags: Tags, preset: Preset, source_rate: int | None = None,
                attempts: int = 3) -> list[ChapterMark]:
    """`write_m4b`, then decode the M4B and re-measure: AAC at speech bitrates overshoots peaks by
    a dB or two, so while the decoded file breaks the preset's peak ceiling, write it again with a
    peak limiter set that much (plus a margin) lower. Raises as `write_m4b`."""
    ceiling = preset.peak_ceiling_db
    limit: float | None = None
    for _ in range(attempts):
        marks = write_m4b(path, sources, titles, tags, preset, source_rate, limit)
        if ceiling is None:
            return marks
        peak = decoded_peak_db(path, preset)
        if peak <= ceiling:
            return marks
        limit = (ceiling if limit is None else limit) - (peak - ceiling) - 0.3
        log.info("%s: decoded peak %.2f dB over the %.1f ceiling; re-encoding limited to %.2f dB", path,
                 peak - ceiling, ceiling, limit)
    log.warning("%s: peak still above the %s ceiling after %d attempts", path, preset.name, attempts)
    return marks


def decoded_peak_db(path: str | Path, preset: Preset) -> float:
    """The peak a store's checker sees in a delivered file: its true peak when the preset sets a
    true-peak ceiling, else its sample peak (dB); decoded by ffmpeg block by block."""
    rate, channels, stream = ffmpeg_blocks(path)
    tracker = PeakTracker(rate, channels)
    for block in stream:
        tracker.update(block)
    true_peak = tracker.finish()
    if preset.true_peak_ceiling_db is not None:
        return true_peak
    return 20.0 * math.log10(tracker.sample_peak) if tracker.sample_peak > 0 else -math.inf


def _marks(titles: Sequence[str], counts: Sequence[int], sample_rate: int) -> list[ChapterMark]:
    marks, pos = [], 0
    for title, n in zip(titles, counts):
        marks.append(ChapterMark(title, pos / sample_rate, (pos + n) / sample_rate))
        pos += n
    return marks


def write_book_mp3(path: str | Path, sources: Sequence[AudioSource], titles: Sequence[str],
                   tags: Tags, preset: Preset, source_rate: int | None = None,
                   seed: int = 0) -> list[ChapterMark]:
    """Write the whole book as one CBR MP3 with ID3 CHAP/CTOC chapter frames; atomic.

    Encodes block by block into the file (`mp3.Mp3Writer`: the Info frame is filled in once the
    sample count is known). Returns the chapter marks. Raises MasteringError or OutputError /
    InputError.
    """
    _check(sources, titles)
    sr, ch = preset.sample_rate, preset.channels
    counts: list[int] = []
    with atomic_path(path) as out:
        with open(out, "w+b") as fh:  # read back to count frames
            writer = Mp3Writer(fh, preset, seed)
            for source in sources:
                n = 0
                for block in iter_blocks(source, sr, ch, source_rate):
                    writer.write(block)
                    n += len(block)
                counts.append(n)
            if not sum(counts):
                raise MasteringError("the book has no audio", path)
            writer.finish()
        marks = _marks(titles, counts, sr)
        write_id3(out, tags, marks)
    return marks
