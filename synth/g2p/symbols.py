"""The GPT-SoVITS v2 phone inventory (732 symbols) and phone -> id lookup.

The finetuned models index their text embedding by position in this list, so the list is data
shipped with the package (symbols_v2.json), never rebuilt at run time. Its order: the sorted union
of pad, Chinese initials/finals with tones, Japanese, punctuation/pauses and ARPAbet; then the two
Japanese pitch marks, the sorted Korean and the sorted Cantonese symbols.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Sequence

from synth.errors import SynthesisError

PUNCTUATION = ("!", "?", "…", ",", ".", "-")


@lru_cache(maxsize=1)
def symbols() -> tuple[str, ...]:
    with resources.files(__package__).joinpath("symbols_v2.json").open(encoding="utf-8") as f:
        return tuple(json.load(f))


@lru_cache(maxsize=1)
def symbol_to_id() -> dict[str, int]:
    return {s: i for i, s in enumerate(symbols())}


def phones_to_ids(phones: Sequence[str]) -> list[int]:
    """Phone strings -> embedding ids. Raises SynthesisError naming the first unknown phone."""
    table = symbol_to_id()
    try:
        return [table[p] for p in phones]
    except KeyError as exc:
        raise SynthesisError(f"phone {exc.args[0]!r} is not in the GPT-SoVITS v2 symbol table") from None
