"""Settings of the text front end, one frozen dataclass with the defaults in one place.

Engines differ in how much text they speak reliably in one breath: GPT-SoVITS drifts or skips words
on long inputs, espeak does not care. So the sentence budget is a property of the engine, chosen
with `config_for(engine_name)`.
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


GPT_SOVITS = FrontendConfig(max_units=50, min_units=4)  # "Yes." and "好的。" merge; "He left." stays
ESPEAK = FrontendConfig(max_units=400, min_units=2)
DEFAULT = GPT_SOVITS

_BY_ENGINE = {"gpt-sovits": GPT_SOVITS, "gpt_sovits": GPT_SOVITS, "espeak": ESPEAK}


def config_for(engine: str) -> FrontendConfig:
    """The front-end settings suited to an engine name; unknown engines get the cautious default."""
    return _BY_ENGINE.get(engine.lower(), DEFAULT)
