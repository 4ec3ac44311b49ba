"""SRT and WebVTT transcripts timed by where each sentence actually sits in the audio.

The times come from stitching's spans (the trimmed clip positions), not from estimated reading
speed, so captions start when the voice starts. A sentence too long for one caption is cut at
word or punctuation boundaries into several cues, its span shared out in proportion to speaking
time (Han characters and Latin letters weighted as in clip QC). Lines wrap at 42 characters, two
lines per cue at most, the usual subtitle limits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mastering.errors import MasteringError

from .clipqc import text_units
from .files import write_bytes_atomic

LINE_CHARS = 42


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


# After CJK punctuation, or at a space. Never inside a token: not in a number (4.0, 1,000, 10:30)
# nor in an address ('hello@modelshop.example' was captioned 'hello@modelshop. example').
_BREAK = re.compile(r"(?<=[，；：、。！？])\s*|\s+")


def _pieces(text: str) -> list[str]:
    """Split into the smallest units a caption may break between (words, CJK clauses, chars)."""
    out: list[str] = []
    for token in (t for t in _BREAK.split(text) if t):
        # CJK runs have no spaces: allow a break between any two characters of a long run.
        if len(token) > LINE_CHARS:
            out += [token[i:i + LINE_CHARS] for i in range(0, len(token), LINE_CHARS)]
        else:
            out.append(token)
    return out


def _join(a: str, b: str) -> str:
    if not a:
        return b
    def wide(ch: str) -> bool:  # CJK and full-width forms: written without spaces
        return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"
    cjk = wide(a[-1]) or wide(b[0])
    return a + b if cjk else a + " " + b


def split_text(text: str, max_chars: int = 2 * LINE_CHARS) -> list[str]:
    """Cut `text` into chunks of at most `max_chars` at break opportunities (greedy)."""
    chunks: list[str] = []
    cur = ""
    for piece in _pieces(" ".join(text.split())):
        joined = _join(cur, piece)
        if cur and len(joined) > max_chars:
            chunks.append(cur)
            cur = piece
        else:
            cur = joined
    if cur:
        chunks.append(cur)
    return chunks


def wrap(text: str, width: int = LINE_CHARS) -> str:
    """Wrap a cue's text into two balanced lines when it is longer than `width` characters."""
    if len(text) <= width:
        return text
    pieces = _pieces(text)
    best, best_cost = text, None
    for k in range(1, len(pieces)):  # the most balanced two-line split
        a, b = "", ""
        for p in pieces[:k]:
            a = _join(a, p)
        for p in pieces[k:]:
            b = _join(b, p)
        cost = max(len(a), len(b))
        if best_cost is None or cost < best_cost:
            best, best_cost = a + "\n" + b, cost
    return best


def cues(spans: Sequence[tuple[float, float]], texts: Sequence[str], offset_s: float = 0.0,
         max_chars: int = 2 * LINE_CHARS) -> list[Cue]:
    """One or more cues per sentence, times = span + `offset_s` (e.g. a chapter's start in a book).

    Empty texts and zero-length spans are skipped. Raises MasteringError when spans and texts
    differ in number or a span runs backwards.
    """
    if len(spans) != len(texts):
        raise MasteringError(f"{len(spans)} spans but {len(texts)} sentence texts")
    out: list[Cue] = []
    for (start, end), text in zip(spans, texts):
        if end < start:
            raise MasteringError(f"span ({start}, {end}) runs backwards")
        chunks = split_text(text, max_chars)
        if not chunks or end == start:
            continue
        weights = [max(text_units(c), 0.3) for c in chunks]
        total = sum(weights)
        t = start
        for chunk, w in zip(chunks, weights):
            t_end = t + (end - start) * w / total
            out.append(Cue(t + offset_s, t_end + offset_s, chunk))
            t = t_end
        out[-1] = Cue(out[-1].start_s, end + offset_s, out[-1].text)  # no rounding drift
    return out


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(items: Sequence[Cue]) -> str:
    """SubRip text: numbered blocks, comma before the milliseconds."""
    blocks = [f"{i}\n{_stamp(c.start_s, ',')} --> {_stamp(c.end_s, ',')}\n{wrap(c.text)}\n"
              for i, c in enumerate(items, 1)]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(items: Sequence[Cue]) -> str:
    """WebVTT text: header, then blocks with a dot before the milliseconds; markup escaped."""
    blocks = [f"{_stamp(c.start_s, '.')} --> {_stamp(c.end_s, '.')}\n{_vtt_escape(wrap(c.text))}\n"
              for c in items]
    return "WEBVTT\n\n" + "\n".join(blocks)


def write_srt(path: str | Path, items: Sequence[Cue]) -> Path:
    """Write an SRT file (UTF-8) atomically. Raises OutputError."""
    return write_bytes_atomic(path, to_srt(items).encode("utf-8"))


def write_vtt(path: str | Path, items: Sequence[Cue]) -> Path:
    """Write a WebVTT file (UTF-8) atomically. Raises OutputError."""
    return write_bytes_atomic(path, to_vtt(items).encode("utf-8"))


_STAMP = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d{3}) --> (\d+):(\d\d):(\d\d)[,.](\d{3})")


def parse_times(text: str) -> list[tuple[float, float]]:
    """(start, end) seconds of every cue in SRT or WebVTT text — for tests and QC."""
    out = []
    for m in _STAMP.finditer(text):
        g = [int(x) for x in m.groups()]
        out.append((g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000,
                    g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000))
    return out
