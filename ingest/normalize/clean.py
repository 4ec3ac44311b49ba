"""Character-level clean-up and script detection, before any sentence is cut.

Books arrive with full-width digits, zero-width joiners, emoji and soft hyphens. None of these can
be spoken, and some (emoji) make a TTS model babble, so they go first. Chinese punctuation is kept:
it still marks sentence and clause ends for the splitter.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Literal

from ingest.foreign import MARKS, TAGGED, mark_greek

Script = Literal["zh", "en", "ja", "ko"]

# Full-width ASCII letters, digits and a few symbols -> ASCII. Full-width ，！？：；（） stay:
# they are Chinese punctuation, and the splitter reads them as such.
_FULLWIDTH_KEEP = set("，！？：；（）")
_FW = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp) not in _FULLWIDTH_KEEP}
_FW[0x3000] = 0x20  # ideographic space
_FW[0xFFE5] = ord("¥")

_GREEK = {"α": " alpha ", "β": " beta ", "γ": " gamma ", "δ": " delta ", "ε": " epsilon ",
          "θ": " theta ", "λ": " lambda ", "π": " pi ", "σ": " sigma ", "φ": " phi ",
          "ω": " omega ", "Ω": " omega ", "Δ": " delta ", "Σ": " sigma "}

_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U0001FC00-\U0001FFFF\u2600-\u27BF\u2B00-\u2BFF\uFE00-\uFE0F"
    "\u200B-\u200F\u2060-\u206F\u20E3\uE003-\uF8FF\U000E0000-\U000E007F\u00AD\uFEFF\u2122\u00AE\u00A9]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\r\n\u00A0\u2000-\u200A\u2028\u2029\u202F\u205F]+")


def clean_text(text: str) -> str:
    """Strip what cannot be spoken (emoji, control and zero-width characters), fold full-width
    ASCII to ASCII and collapse whitespace to single spaces."""
    text = text.translate(_FW)
    text = _EMOJI.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = mark_greek(text)  # Greek words are Greek; lone letters (π, Δ) are symbols
    if any(ch in text for ch in MARKS) or any(ch in text for ch in _GREEK):
        # Outside the marks: stray mark characters go, Greek letters become their names.
        text = _outside_marks(text, lambda part: "".join(_GREEK.get(ch, ch) for ch in part if ch not in MARKS))
    if ". ." in text:
        text = _SPACED_ELLIPSIS.sub("…", text)  # '. . .' was cut into sentences at every dot
    return _SPACES.sub(" ", text).strip()


_SPACED_ELLIPSIS = re.compile(r"\s?\.(?:\s\.){2,3}")


def _outside_marks(text: str, fn) -> str:
    """`fn` applied to the text between foreign-language marks (see ingest.foreign)."""
    out, at = [], 0
    for m in TAGGED.finditer(text):
        out.append(fn(text[at:m.start()]))
        out.append(m.group(0))
        at = m.end()
    out.append(fn(text[at:]))
    return "".join(out)


def script_of(ch: str) -> Script | None:
    """The language a character's script implies, or None for neutral characters
    (digits, punctuation, symbols, spaces)."""
    o = ord(ch)
    if o < 0x80:
        return "en" if ch.isalpha() else None
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF \
            or 0x20000 <= o <= 0x2FA1F or o == 0x3007:
        return "zh"
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9D:
        return "ja"
    if 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "ko"
    if 0xC0 <= o <= 0x24F and o not in (0xD7, 0xF7):
        return "en"
    return None


def strip_accents(text: str) -> str:
    """'café' -> 'cafe', for the English G2P whose alphabet is a-z."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
