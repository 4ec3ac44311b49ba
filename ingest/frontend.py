"""Settings of the text front end, one frozen dataclass with the defaults in one place.

Engines differ in how much text they speak reliably in one breath: GPT-SoVITS drifts or skips words
on long inputs, espeak does not care. So the sentence budget is a property of the engine, chosen
in its registry entry (`synth.engines`); `DEFAULT` is the cautious budget for text with no engine yet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UrlPolicy = Literal["read", "drop"]


@dataclass(frozen=True)
class FrontendConfig:
    """How text is cut and normalised.

    Lengths are in *units*: one Chinese character is one unit and one English word two, so
    `max_units=50` is about 50 Chinese characters or 25 English words (a digit is one unit, and a
    run of more than 20 letters one per letter). Every sentence `segment` returns is within
    `max_units` as written and within 12 characters per unit; what it says (numbers read out)
    within 1.5 times `max_units`.
    """

    max_units: int = 50
    min_units: int = 4  # shorter pieces are merged with a neighbour
    merge_short: bool = True
    urls: UrlPolicy = "read"
    emails: UrlPolicy = "read"
    spell_acronyms: bool = True
    # Words left exactly as written (not spelled as acronyms), so a pronunciation lexicon entry
    # such as SQL = "S IY1 K W AH0 L" still finds them; upper-case forms.
    keep_words: frozenset[str] = frozenset()
    # Passages marked as another language (xml:lang="de", Greek words): True when the engine has
    # voices for them (espeak) — they keep their language; False — Latin-script passages are read
    # in the book voice as English, other scripts are skipped with a warning.
    foreign_languages: bool = False


DEFAULT = FrontendConfig()  # the cautious budget: engines declare their own (synth.engines)
