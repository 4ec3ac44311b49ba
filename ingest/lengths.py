"""Sentence length budgets: how long a piece is for an engine ("units": a Han character is 1, an
English word 2) and how over-long sentences are cut (clause marks, then commas, then spaces, then
characters) and very short ones merged, so every piece the engine gets is one it reads reliably.
Linear-time throughout: hostile text (50,000 characters with no break) must not stall a run.
"""
from __future__ import annotations

import logging
import math
import re

_HAN = "\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\u3007"


def _is_han(ch: str) -> bool:
    return bool(ch) and ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")


# ---------------------------------------------------------------- length budget

_UNIT_TOKEN = re.compile(r"[" + _HAN + r"\u3040-\u30ff\uac00-\ud7af]|[A-Za-z\u00C0-\u024F]++|\d")
# No word is longer than this; a longer run of letters ('aaaa…', a pasted hash) is no word an
# engine can say in one breath, so it counts one unit per letter, like digits.
_LONGEST_WORD = 20
# Characters per unit a piece may reach before it is cut regardless of its units: text made of
# symbols alone ('%%%%…', '----…') counts no units but still costs time and may still be read.
_CHARS_PER_UNIT = 12


def units(text: str) -> float:
    """Rough spoken length: a Chinese character 1, an English word 2, a digit 1, and a run of
    more than 20 letters 1 per letter."""
    n = 0.0
    for tok in _UNIT_TOKEN.findall(text):
        if len(tok) > 1:
            n += 2 if len(tok) <= _LONGEST_WORD else len(tok)
        else:
            n += 2 if tok.isascii() and tok.isalpha() else 1
    return n


_CLAUSE = re.compile(r"(?<!\d)[；;：:](?!\d)|——|—|–(?= )|……|…")
_COMMA = re.compile(r"(?<!\d)[，,](?!\d)|[、，]")
_LAST_LEVEL = 5
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SPACE_RUN = re.compile(r"\s+")


def cut_long(sentence: str, max_units: float) -> list[str]:
    """Cut a sentence longer than `max_units` at clause stops, then commas, then word
    boundaries, then between characters, and at last anywhere; pieces are packed back up to the
    budget, evenly. Every piece is within `max_units` and within 12 characters per unit (a budget
    under 2 units, one letter's worth, is taken as 2)."""
    budget = max(float(max_units), 2.0)
    return [p for p in (s.strip() for s in _cut(sentence, budget, 1)) if p]


def _too_long(text: str, max_units: float) -> bool:
    return len(text) > _CHARS_PER_UNIT * max_units or units(text) > max_units


def _cut(text: str, max_units: float, level: int) -> list[str]:
    if not _too_long(text, max_units):
        return [text]
    if level == _LAST_LEVEL:
        return _hard_cut(text, max_units)
    cuts = _candidates(text, level)
    if not cuts:
        return _cut(text, max_units, level + 1)
    bounds = [0, *cuts, len(text)]
    parts = [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    out: list[str] = []
    for chunk in _pack(parts, max_units):
        out.extend(_cut(chunk, max_units, level + 1))
    return out


def _hard_cut(text: str, max_units: float) -> list[str]:
    """The last resort, for a stretch with no boundary left (a 50,000-digit number, a long token
    with no spaces): equal slices by characters, each halved again while still too long. A slice
    of one character is never cut further."""
    if len(text) <= 1:
        return [text]
    n = max(2, math.ceil(units(text) / max_units), math.ceil(len(text) / (_CHARS_PER_UNIT * max_units)))
    size = math.ceil(len(text) / n)
    out: list[str] = []
    for i in range(0, len(text), size):
        piece = text[i:i + size]
        out.extend(_hard_cut(piece, max_units) if _too_long(piece, max_units) else [piece])
    return out


def _candidates(text: str, level: int) -> list[int]:
    if level == 1:
        return [m.end() for m in _CLAUSE.finditer(text) if m.end() < len(text)]
    if level == 2:
        return [m.end() for m in _COMMA.finditer(text) if m.end() < len(text)]
    if level == 3:
        if not _CJK.search(text):  # words end at spaces: no dictionary needed (jieba takes 7 s a MiB)
            return [m.end() for m in _SPACE_RUN.finditer(text) if m.end() < len(text)]
        import jieba  # word boundaries keep 中华人民共和国 whole; imported only for long sentences
        jieba.setLogLevel(logging.WARNING)
        pos, cuts = 0, []
        for word in jieba.lcut(text):
            pos += len(word)
            cuts.append(pos)
        return cuts[:-1]
    return [i for i in range(1, len(text))
            if not (text[i - 1].isascii() and text[i - 1].isalnum() and text[i].isascii() and text[i].isalnum())]


def _pack(parts: list[str], max_units: float) -> list[str]:
    sizes = [units(p) for p in parts]
    target = sum(sizes) / max(1, math.ceil(sum(sizes) / max_units))
    chunks: list[str] = []
    cur, cur_u = "", 0.0
    for part, u in zip(parts, sizes):
        if cur and u > 0 and (cur_u + u > max_units or cur_u >= target):  # stops stay left
            chunks.append(cur)
            cur, cur_u = "", 0.0
        cur += part
        cur_u += u
    if cur:
        chunks.append(cur)
    return chunks


def merge_short(pieces: list[str], min_units: float, max_units: float) -> list[str]:
    """Merge pieces shorter than `min_units` into a neighbour while the result fits the budget
    (in units, and in characters: thousands of '.' count no units but must not merge into one)."""
    out: list[str] = []
    sizes: list[float] = []  # units of out[i], kept rather than recounted as out[-1] grows
    max_chars = _CHARS_PER_UNIT * max_units
    for piece in pieces:
        u = units(piece)
        if out and (u < min_units or sizes[-1] < min_units) and sizes[-1] + u <= max_units \
                and len(out[-1]) + len(piece) < max_chars:
            out[-1] = _join_all([out[-1], piece])
            sizes[-1] += u
        else:
            out.append(piece)
            sizes.append(u)
    return out


def _join_all(texts: list[str]) -> str:
    out = ""
    for t in texts:
        if out and not (_wide(out[-1]) or _wide(t[:1])):
            out += " "
        out += t
    return out


def _wide(ch: str) -> bool:
    return bool(ch) and ord(ch) >= 0x2E80


# ---------------------------------------------------------------- language runs

# Units both normalisers read; others (GB, mph) stay Latin words and pull their number into English.
