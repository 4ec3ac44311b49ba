"""Where to split a chapter that is longer than a file may be (ACX: 120 minutes).

A split must fall between paragraphs, never mid-thought; parts should be of similar length rather
than one full part and a scrap. Each part is assembled on its own afterwards (with its own head and
tail room tone), so a part's length counts those too. Pure function over the stitched spans.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

from mastering.errors import MasteringError

log = logging.getLogger(__name__)


def split_points(spans: Sequence[tuple[float, float]], paragraph_ends: Sequence[bool],
                 max_s: float, head_s: float = 0.0, tail_s: float = 0.0) -> list[int]:
    """Clip indices where parts 2, 3, … begin; [] when the chapter fits in one file.

    `spans[i]` is clip i's (start, end) on the chapter timeline; `paragraph_ends[i]` says a split
    may follow clip i. Each cut goes at the paragraph end nearest to an even share of what is
    left, among those that keep the part within `max_s`. Where no paragraph end fits, a sentence
    end is used (logged). Raises MasteringError when even that cannot fit (one sentence > max_s),
    or on mismatched inputs.
    """
    n = len(spans)
    if len(paragraph_ends) != n:
        raise MasteringError(f"{n} spans but {len(paragraph_ends)} paragraph flags")
    if max_s <= head_s + tail_s:
        raise MasteringError("max length is shorter than the head and tail room tone")
    if n == 0:
        return []

    def length(i: int, j: int) -> float:  # part of clips i..j-1
        return spans[j - 1][1] - spans[i][0] + head_s + tail_s

    cuts: list[int] = []
    start = 0
    while length(start, n) > max_s:
        remaining = length(start, n)
        ideal = spans[start][0] + remaining / math.ceil(remaining / max_s)
        fits = [j for j in range(start + 1, n) if length(start, j) <= max_s]
        paragraph = [j for j in fits if paragraph_ends[j - 1]]
        if not paragraph:
            if not fits:
                raise MasteringError(
                    f"sentence {start + 1} alone is longer than {max_s / 60:.1f} minutes")
            log.warning("no paragraph end fits within %.1f min after sentence %d; "
                        "splitting at a sentence end", max_s / 60, start + 1)
            paragraph = fits
        j = min(paragraph, key=lambda k: abs(spans[k - 1][1] - ideal))
        cuts.append(j)
        start = j
    return cuts
