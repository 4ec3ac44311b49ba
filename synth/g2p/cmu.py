"""The CMU Pronouncing Dictionary and letter names: one copy, kept in the front end (ingest)."""
from __future__ import annotations

from ingest.normalize.cmu import LETTER_NAMES, cmu_dict

LETTERS = LETTER_NAMES

__all__ = ["LETTERS", "cmu_dict"]
