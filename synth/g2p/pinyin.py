"""Tone-numbered pinyin syllables ('zhong1', 'lv4', 'er5') -> GPT-SoVITS v2 initial/final pairs.

The v2 inventory follows the opencpop convention: every syllable is exactly two phones. Syllables
without an initial get a glottal placeholder by their first vowel (AA, EE, OO); y and w count as
initials; ü is written v; after j/q/x 'u' is ü; the apical vowel is 'ir' after zh/ch/sh/r and
'i0' after z/c/s; 'yan'/'ye' use the front finals En/E.
"""
from __future__ import annotations

from functools import lru_cache

_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
             "r", "z", "c", "s", "y", "w")
_Y_FINALS = {"i": "i", "in": "in", "ing": "ing", "u": "v", "v": "v", "uan": "van", "van": "van",
             "ue": "ve", "ve": "ve", "un": "vn", "vn": "vn", "an": "En", "e": "E", "ou": "ou",
             "ong": "ong", "a": "a", "ang": "ang", "ao": "ao", "o": "o"}
_ZERO_INITIAL = {"a": "AA", "o": "OO", "e": "EE"}
# Interjection syllables outside the table, read as their nearest regular syllable.
_SPECIAL = {"n": ("EE", "en"), "ng": ("EE", "eng"), "hng": ("h", "eng"), "m": ("m", "u"),
            "hm": ("h", "en"), "ê": ("EE", "E"), "yo": ("y", "o"), "lo": ("l", "o")}


@lru_cache(maxsize=4096)
def split_syllable(syllable: str) -> tuple[str, str]:
    """'zhong1' -> ('zh', 'ong1'); tone 5 is the neutral tone. Raises ValueError on
    something that is not a pinyin syllable."""
    syllable = syllable.lower().replace("ü", "v").replace("u:", "v")
    tone = syllable[-1] if syllable[-1:].isdigit() else "5"
    base = syllable.rstrip("0123456789")
    if tone not in "12345" or not base.isalpha():
        raise ValueError(f"not a pinyin syllable: {syllable!r}")
    if base in _SPECIAL:
        initial, final = _SPECIAL[base]
        return initial, final + tone
    if base[0] in _ZERO_INITIAL:
        return _ZERO_INITIAL[base[0]], base + tone
    initial = next((i for i in _INITIALS if base.startswith(i)), "")
    rest = base[len(initial):]
    if not initial or not rest:
        raise ValueError(f"not a pinyin syllable: {syllable!r}")
    if initial == "y":
        if rest not in _Y_FINALS:
            raise ValueError(f"not a pinyin syllable: {syllable!r}")
        final = _Y_FINALS[rest]
    elif initial == "w":
        final = rest
    elif initial in ("j", "q", "x") and rest[0] in "uv":
        final = "v" + rest[1:]
    elif rest == "i" and initial in ("zh", "ch", "sh", "r"):
        final = "ir"
    elif rest == "i" and initial in ("z", "c", "s"):
        final = "i0"
    else:
        final = {"uei": "ui", "iou": "iu", "uen": "un"}.get(rest, rest)
    return initial, final + tone
