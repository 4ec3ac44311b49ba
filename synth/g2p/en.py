"""English G2P: normalised English text -> ARPAbet phones of the v2 table.

Lookup order per word: user lexicon, spelled letters, homographs (the reading chosen from the
neighbouring words: homographs.py), the CMU dictionary,
possessives, old contractions, a dictionary word plus an unstressed ending (-less, -ness, -men,
-est) and strict two-word compounds, and only then g2p_en's neural model.
Results are cached per word: the neural model costs about a millisecond a word.
"""
from __future__ import annotations

import re

from ingest.normalize import strip_accents
from synth.g2p.cmu import LETTERS, cmu_dict
from synth.g2p.homographs import reading
from synth.g2p.neural import neural_g2p
from synth.g2p.symbols import symbol_to_id

_TOKEN = re.compile(r"'?[A-Za-z]+(?:'[A-Za-z]+)*'?|[,.!?…;:\-—]")
_CAMEL = re.compile(r"[a-z][A-Z]")
_CAMEL_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_PUNCT = {",": ",", ".": ".", "!": "!", "?": "?", "…": "…", ";": ",", ":": ",", "-": "-", "—": ","}
# What is left of a word after an apostrophe ate letters: said as sounds, never as a letter's name
# or a dictionary abbreviation ('st' is not "street" in can'st, 'n' not "en" in hav'n't).
_ELIDED = {"st": ("S", "T"), "t": ("T",), "n": ("AH0", "N"), "d": ("D",), "ll": ("L",), "ve": ("V",),
           "re": ("ER0",), "m": ("M",), "em": ("AH0", "M"), "s": ("Z",), "th": ("DH",), "y": ("Y",),
           "r": ("R",), "nt": ("N", "T")}
_EDGE = {"th'": ("DH", "AH0"), "an'": ("AH0", "N"), "'n'": ("AH0", "N"), "o'": ("AH0",)}


class EnglishG2P:
    """Callable: normalised en text -> phones (ARPAbet and v2 punctuation)."""

    def __init__(self, lexicon: dict[str, tuple[str, ...]] | None = None) -> None:
        self.lexicon = {k.lower(): v for k, v in (lexicon or {}).items()}
        self._cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, text: str) -> list[str]:
        tokens = _TOKEN.findall(strip_accents(text))
        phones: list[str] = []
        for i, tok in enumerate(tokens):
            if tok in _PUNCT:
                p = _PUNCT[tok]
                if phones and phones[-1] in _PUNCT.values():
                    continue
                if phones:
                    phones.append(p)
                continue
            phones.extend(self.word(tok, tokens, i))
        return phones

    def word(self, tok: str, tokens: list[str] | None = None, i: int = 0) -> tuple[str, ...]:
        """Phones of tokens[i] (`tok`); the sentence's other tokens choose a homograph's reading."""
        if tok.startswith("'") or tok.endswith("'"):
            # 'em, 'tis, goin', th': elisions the dictionary (or _EDGE) knows; otherwise a quote mark
            edged = tok.lower()
            if edged in _EDGE:
                return _EDGE[edged]
            if edged in self.lexicon or edged in cmu_dict():
                return self.lexicon.get(edged) or cmu_dict()[edged]
            tok = tok.strip("'")
        low = tok.lower()
        if low in self.lexicon:
            return self.lexicon[low]
        if len(tok) == 1:
            return _letter(tok, tokens or [tok], i)
        if re.fullmatch(r"[A-Z]'s", tok):
            return LETTERS[low[0]] + ("Z",)
        homograph = reading(low, tokens or [tok], i if tokens else 0)
        if homograph:
            return _clean(homograph)
        if _CAMEL.search(tok):  # PyTorch, iPhone, OpenAI: each part on its own
            parts = _CAMEL_PART.findall(tok)
            if len(parts) > 1:
                return tuple(p for part in parts for p in (
                    _spell(part) if part.isupper() and len(part) > 1 else self.word(part)))
        if tok.isupper() and low not in cmu_dict():
            return _spell(tok)  # an acronym: spell it
        hit = self._cache.get(low)
        if hit is None:
            hit = self._cache[low] = _clean(self._lookup(low))
        return hit

    def _lookup(self, low: str) -> tuple[str, ...]:
        cmu = cmu_dict()
        if low in cmu:
            return cmu[low]
        if low.endswith("'s") and len(low) > 2:
            base = self.word(low[:-2])
            last = base[-1] if base else ""
            if last in ("S", "Z", "SH", "ZH", "CH", "JH"):
                return base + ("IH0", "Z")
            return base + (("S",) if last in ("P", "T", "K", "F", "TH") else ("Z",))
        if "'" in low:
            return self._elided(low)
        if len(low) <= 3 and not re.search(r"[aeiouy]", low):
            return tuple(p for c in low for p in LETTERS[c])
        return _derived(low, cmu) or neural_g2p().predict(low)

    def _elided(self, low: str) -> tuple[str, ...]:
        """Old-style contractions the dictionary lacks (can'st, hav'n't, d'ye, tellin'): each part
        said as itself; a fragment as its sounds; a stem missing its final 'e' (hav, giv) as the
        dictionary word with it."""
        cmu = cmu_dict()
        parts = [part for part in low.split("'") if part]
        out: list[str] = []
        for part in parts:
            if len(parts) > 1 and part in _ELIDED:
                out.extend(_ELIDED[part])
            elif part not in cmu and part + "e" in cmu:
                out.extend(cmu[part + "e"])
            else:
                out.extend(self._lookup(part))
        return tuple(out)


# Unstressed endings a dictionary word takes: measure+less, heathen+ish, know+est (archaic), go+eth.
_SUFFIXES = {"lessness": ("L", "AH0", "S", "N", "AH0", "S"), "less": ("L", "AH0", "S"),
             "ness": ("N", "AH0", "S"), "ful": ("F", "AH0", "L"), "ish": ("IH0", "SH"),
             "man": ("M", "AH0", "N"), "men": ("M", "AH0", "N"), "est": ("IH0", "S", "T"),
             "eth": ("IH0", "TH")}


def _derived(low: str, cmu: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """A dictionary word plus an unstressed ending, or two dictionary words of four letters or more,
    the second starting with a consonant (whale+bone, main+mast, book+cast); None otherwise.

    Looser splits read Moby-Dick badly: the dictionary holds names and abbreviations ('des',
    'doub', 'meth', 'kee'), so des+cried, meth+inks and kee+led came out in place of the neural
    model's better guesses."""
    for suffix, phones in _SUFFIXES.items():
        base = low[:-len(suffix)]
        if not low.endswith(suffix) or len(base) < 3:
            continue
        if suffix in ("est", "eth") and base[-1] != base[-2] and base + "e" in cmu:  # mak+eth: make
            return cmu[base + "e"] + phones
        if base in cmu:
            return cmu[base] + phones
    for cut in range(4, len(low) - 3):
        left, right = low[:cut], low[cut:]
        if right[0] not in "aeiouy" and left in cmu and right in cmu:
            return cmu[left] + _secondary(cmu[right])
    return None


def _secondary(phones: tuple[str, ...]) -> tuple[str, ...]:
    """The second word of a compound takes secondary stress (WHALE-bone, not whale-BONE)."""
    return tuple(p[:-1] + "2" if p.endswith("1") else p for p in phones)


def _letter(tok: str, tokens: list[str], i: int) -> tuple[str, ...]:
    low = tok.lower()
    if low == "a":
        words = [t for t in tokens if t[0].isalpha()]
        spelled = len(words) == 1 or any(0 <= j < len(tokens) and len(tokens[j]) == 1 and tokens[j].isupper()
                                          for j in (i - 1, i + 1))
        return LETTERS["a"] if tok == "A" and spelled else ("AH0",)
    if low == "i" and tok == "I":
        return ("AY1",)
    return LETTERS.get(low, ())


def _spell(tok: str) -> tuple[str, ...]:
    return _clean(tuple(p for c in tok.lower() for p in LETTERS.get(c, ())))


def _clean(phones: tuple[str, ...]) -> tuple[str, ...]:
    table = symbol_to_id()
    return tuple(q for q in (("UW1" if p == "UW" else p) for p in phones) if q in table)
