"""A project's pronunciation lexicon: names and terms read the way the author wants.

Two file forms, both plain text a producer can edit:

TOML (tables per language)::

    [zh]
    "曾小贤" = "zeng1 xiao3 xian2"
    [en]
    "Sovits" = "S OW1 V IH0 T S"

TSV (one entry a line, `word<TAB>pronunciation`, '#' starts a comment); the word's script picks
the language: Han -> pinyin with tone numbers, anything else -> ARPAbet of the v2 table.
Entries override both the dictionaries and the neural model.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import InputError
from synth.g2p.pinyin import split_syllable
from synth.g2p.symbols import symbol_to_id


@dataclass(frozen=True)
class Lexicon:
    zh: dict[str, tuple[str, ...]] = field(default_factory=dict)  # word -> pinyin syllables
    en: dict[str, tuple[str, ...]] = field(default_factory=dict)  # word (lower case) -> ARPAbet

    def keep_words(self) -> frozenset[str]:
        """Upper-case forms of the English entries, for `FrontendConfig.keep_words`: the
        normaliser must not spell 'SQL' as letters when the lexicon says how to say it."""
        return frozenset(w.upper() for w in self.en)


def _is_han(word: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" for c in word)


def load_lexicon(path: str | Path) -> Lexicon:
    """Read a .toml or .tsv lexicon. Raises InputError naming the file and the bad entry."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the pronunciation lexicon: {exc.strerror}", path) from exc
    entries: list[tuple[str, str, str]] = []  # (lang, word, pronunciation)
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"not valid TOML: {exc}", path) from exc
        for lang in data:
            if lang not in ("zh", "en") or not isinstance(data[lang], dict):
                raise InputError(f"unknown table [{lang}]; use [zh] and [en]", path)
            entries += [(lang, w, str(p)) for w, p in data[lang].items()]
    else:
        for n, line in enumerate(raw.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            word, sep, pron = line.partition("\t")
            if not sep or not pron.strip():
                raise InputError(f"line {n}: expected 'word<TAB>pronunciation'", path)
            entries.append(("zh" if _is_han(word) else "en", word.strip(), pron))
    lex = Lexicon()
    for lang, word, pron in entries:
        try:
            if lang == "zh":
                lex.zh[word] = _check_pinyin(word, pron)
            else:
                lex.en[word.lower()] = _check_arpabet(pron)
        except ValueError as exc:
            raise InputError(f"entry {word!r}: {exc}", path) from None
    return lex


def _check_pinyin(word: str, pron: str) -> tuple[str, ...]:
    sylls = tuple(pron.split())
    if len(sylls) != len(word):
        raise ValueError(f"{len(word)} characters but {len(sylls)} pinyin syllables")
    for s in sylls:
        split_syllable(s if s[-1].isdigit() else s + "5")
    return tuple(s if s[-1].isdigit() else s + "5" for s in sylls)


def _check_arpabet(pron: str) -> tuple[str, ...]:
    phones = tuple(pron.split())
    table = symbol_to_id()
    bad = [p for p in phones if p not in table]
    if bad or not phones:
        raise ValueError(f"unknown ARPAbet phones {bad}; use the CMU set with stress digits")
    return phones
