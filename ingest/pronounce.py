"""The book's own pronunciation data: EPUB3 PLS lexicons and SSML `ssml:ph` attributes (IPA),
turned into ARPAbet entries of the project lexicon — which both engines honour (GPT-SoVITS through
its G2P, espeak as phonemes), so a place name is said the way the publisher wrote it down.
"""
from __future__ import annotations

import re

from lxml import etree

# IPA (General American as PLS files write it) → ARPAbet. Longest symbols first.
_VOWELS = {"eɪ": "EY", "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY", "oʊ": "OW", "əʊ": "OW", "ɝ": "ER", "ɚ": "ER",
           "ɜr": "ER", "ɜːr": "ER", "ɜː": "ER", "ɜ": "ER", "ər": "ER", "iː": "IY", "uː": "UW", "ɑː": "AA",
           "ɔː": "AO", "æ": "AE", "ə": "AH", "ʌ": "AH", "ɪ": "IH", "i": "IY", "ɛ": "EH", "e": "EY", "ɑ": "AA",
           "ɒ": "AA", "ɔ": "AO", "ʊ": "UH", "u": "UW", "o": "OW", "a": "AA"}
_CONSONANTS = {"tʃ": "CH", "dʒ": "JH", "b": "B", "d": "D", "f": "F", "g": "G", "ɡ": "G", "h": "HH", "k": "K",
               "l": "L", "ɫ": "L", "m": "M", "n": "N", "p": "P", "r": "R", "ɹ": "R", "s": "S", "t": "T", "v": "V",
               "w": "W", "ʍ": "W", "z": "Z", "θ": "TH", "ð": "DH", "ʃ": "SH", "ʒ": "ZH", "ŋ": "NG", "j": "Y",
               "y": "Y", "ɾ": "D", "x": "HH", "c": "K"}
_SYMBOLS = sorted({**_VOWELS, **_CONSONANTS}, key=len, reverse=True)
_IGNORED = set("ːˑ.‿ʔ/[]()- \u0303\u0329\u02de")


def ipa_to_arpabet(ipa: str) -> tuple[str, ...] | None:
    """ARPAbet with stress digits for an IPA transcription, or None when it holds a symbol this
    table does not know (the entry is then left to the engine's own G2P)."""
    out: list[str] = []
    stress = "0"
    i = 0
    while i < len(ipa):
        ch = ipa[i]
        if ch in "ˈ'":
            stress, i = "1", i + 1
            continue
        if ch == "ˌ":
            stress, i = "2", i + 1
            continue
        if ch in _IGNORED:
            i += 1
            continue
        symbol = next((s for s in _SYMBOLS if ipa.startswith(s, i)), None)
        if symbol is None:
            return None
        if symbol in _VOWELS:
            out.append(_VOWELS[symbol] + stress)
            stress = "0"
        else:
            out.append(_CONSONANTS[symbol])
        i += len(symbol)
    return tuple(out) if any(p[-1].isdigit() for p in out) else None


_PLS_NS = "{http://www.w3.org/2005/01/pronunciation-lexicon}"
_WORD = re.compile(r"^[A-Za-z][A-Za-z'’\-]*$")


def read_pls(root: etree._Element) -> dict[str, str]:
    """grapheme → IPA of a PLS document (alphabet="ipa"; other alphabets are skipped)."""
    if (root.get("alphabet") or "ipa").lower() != "ipa":
        return {}
    out: dict[str, str] = {}
    for lexeme in root.iter(f"{_PLS_NS}lexeme"):
        phoneme = next((p.text for p in lexeme.iter(f"{_PLS_NS}phoneme") if p.text), None)
        if not phoneme:
            continue
        for grapheme in lexeme.iter(f"{_PLS_NS}grapheme"):
            word = (grapheme.text or "").strip()
            if _WORD.match(word):
                out[word] = phoneme.strip()
    return out


def is_word(text: str) -> bool:
    """Whether an ssml:ph span covers one word (a lexicon entry can stand for it)."""
    return bool(_WORD.match(text.strip()))
