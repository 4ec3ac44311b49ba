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

import json
import re
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

    def entries_in(self, texts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """The entries that can change how `texts` (one sentence's spoken runs) sound, as
        'lang:word=phones' strings: part of that sentence's clip key, so a new or changed entry
        re-synthesizes only the sentences that contain its word, not the whole book. English words
        match as whole words in any case (as the engines look them up), Chinese ones anywhere."""
        joined = "\n".join(texts)
        found = [f"zh:{w}={' '.join(p)}" for w, p in self.zh.items() if w in joined]
        if self.en:
            words = {m.group(0).lower() for m in _WORD.finditer(joined)}
            found += [f"en:{w}={' '.join(p)}" for w, p in self.en.items()
                      if w in words or (not _PLAIN.fullmatch(w) and _whole_word(w).search(joined))]
        return tuple(sorted(found))


_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_PLAIN = re.compile(r"[a-z]+(?:['’][a-z]+)*")


def _whole_word(word: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'])" + re.escape(word) + r"(?![\w'])", re.IGNORECASE)


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


def add_entry(path: str | Path, word: str, pronunciation: str) -> Lexicon:
    """Add (or replace) one entry in a .toml or .tsv lexicon, keeping the rest of the file as the
    producer wrote it (comments, order); creates the file when missing. The entry is checked first
    (InputError naming the file), the file written atomically. Returns the lexicon as now on disk."""
    from synth.cache import write_atomic

    path = Path(path)
    word = word.strip()
    lang = "zh" if _is_han(word) else "en"
    if not word or any(c in word for c in "\t\n\"="):
        raise InputError(f"cannot add {word!r}: not a word", path)
    try:
        phones = _check_pinyin(word, pronunciation) if lang == "zh" else _check_arpabet(pronunciation)
    except ValueError as exc:
        raise InputError(f"entry {word!r}: {exc}", path) from None
    said = " ".join(phones)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = old.splitlines()
    if path.suffix.lower() == ".tsv":
        same = [i for i, line in enumerate(lines) if line.split("\t", 1)[0].strip().lower() == word.lower()]
        entry = f"{word}\t{said}"
        if same:
            lines[same[0]] = entry
        else:
            lines.append(entry)
    else:
        lines = _toml_with(lines, lang, word, said)
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return load_lexicon(path)


def _toml_with(lines: list[str], lang: str, word: str, said: str) -> list[str]:
    """`lines` of a TOML lexicon with `word` set in table [lang] (replacing its line if present)."""
    entry = f"{json.dumps(word, ensure_ascii=False)} = {json.dumps(said, ensure_ascii=False)}"
    table, start = None, None
    for i, line in enumerate(lines):
        head = re.fullmatch(r"\s*\[\s*(\w+)\s*\]\s*(#.*)?", line)
        if head:
            table = head.group(1)
            if table == lang:
                start = i
            continue
        if table == lang and "=" in line and not line.lstrip().startswith("#"):
            key = line.split("=", 1)[0].strip().strip('"').strip("'")
            if (key.lower() if lang == "en" else key) == (word.lower() if lang == "en" else word):
                return lines[:i] + [entry] + lines[i + 1:]
    if start is None:
        return [*lines, *([""] if lines else []), f"[{lang}]", entry]
    return lines[:start + 1] + [entry] + lines[start + 1:]
