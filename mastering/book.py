"""Whole-book files: shared checks, and one MP3 with ID3 CHAP/CTOC chapter frames (the M4B is in
`m4b`).

Both take the chapters' mastered audio in reading order (arrays or files) and stream them block by
block into the encoder, counting samples, so the chapter marks are exactly where the chapters meet
and a ten-hour book never sits in memory.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from ingest.errors import raise_if_stopped
from mastering.errors import MasteringError

from .files import atomic_path
from .mp3 import Mp3Writer
from .presets import Preset
from .sources import AudioSource, iter_blocks
from .tags import ChapterMark, Tags, write_id3

log = logging.getLogger(__name__)


def check_chapters(sources: Sequence[AudioSource], titles: Sequence[str]) -> None:
    if not sources:
        raise MasteringError("a book needs at least one chapter")
    if len(sources) != len(titles):
        raise MasteringError(f"{len(sources)} chapters but {len(titles)} titles")


def chapter_marks(titles: Sequence[str], counts: Sequence[int], sample_rate: int) -> list[ChapterMark]:
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
    check_chapters(sources, titles)
    sr, ch = preset.sample_rate, preset.channels
    counts: list[int] = []
    with atomic_path(path) as out:
        with open(out, "w+b") as fh:  # read back to count frames
            writer = Mp3Writer(fh, preset, seed, in_process=False)
            try:
                for source in sources:
                    n = 0
                    for block in iter_blocks(source, sr, ch, source_rate):
                        raise_if_stopped()
                        writer.write(block)
                        n += len(block)
                    counts.append(n)
                if not sum(counts):
                    raise MasteringError("the book has no audio", path)
                writer.finish()
            finally:
                writer.close()
        marks = chapter_marks(titles, counts, sr)
        write_id3(out, tags, marks)
    return marks
