"""Language-aware text normalisation: what a narrator says for digits, symbols and abbreviations.

`normalize_run(text, lang)` is the single entry point used by the segmenter; the language modules
are importable on their own for tests.
"""
from __future__ import annotations

from ingest.normalize.clean import clean_text, script_of, strip_accents
from ingest.normalize.en import normalize_en
from ingest.normalize.numbers import en_number, roman_to_int, zh_number
from ingest.normalize.urls import EMAIL, URL, say_address
from ingest.normalize.zh import normalize_zh

__all__ = ["clean_text", "script_of", "strip_accents", "normalize_en", "normalize_zh", "normalize_run",
           "en_number", "zh_number", "roman_to_int", "say_address", "URL", "EMAIL"]


def normalize_run(text: str, lang: str, spell_acronyms: bool = True,
                  keep: frozenset[str] = frozenset()) -> str:
    """Normalise one language run ('zh' or 'en'); other languages are returned unchanged.
    `keep`: upper-case words never spelled out (they have a lexicon entry)."""
    if lang == "zh":
        return normalize_zh(text)
    if lang == "en":
        return normalize_en(text, spell_acronyms=spell_acronyms, keep=keep)
    return text
