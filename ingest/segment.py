"""Paragraphs into sentences, sentences into language runs.

A run is a stretch of one language inside a sentence ("我们用 PyTorch 训练模型" is zh, en, zh), so
one voice can switch languages mid-sentence. Script decides the language: Han is `zh`, Latin is
`en`; digits, symbols and punctuation join the run they touch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Lang = Literal["zh", "en"]


@dataclass(frozen=True)
class Run:
    text: str
    lang: Lang


@dataclass(frozen=True)
class Sentence:
    text: str
    runs: tuple[Run, ...]


_SENT_END = re.compile(r"(?<=[。！？!?；;…])[”’」』）)\"']*\s*|(?<=[.])[”’\"')]*\s+(?=\S)")


def split_sentences(paragraph: str) -> list[str]:
    """Split at Chinese and English sentence-final punctuation; keeps the punctuation."""
    text = re.sub(r"\s+", " ", paragraph).strip()
    if not text:
        return []
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        end = m.end()
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def char_lang(ch: str) -> Lang | None:
    """Language of one character by script, or None for neutral characters (digits, punctuation)."""
    o = ord(ch)
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "zh"
    if ch.isascii() and ch.isalpha() or 0x00C0 <= o <= 0x024F:
        return "en"
    return None


def tag_runs(sentence: str, default: Lang = "en") -> list[Run]:
    """Cut a sentence into maximal runs of one language; neutral characters join the left run
    (or the right one at the start of the sentence)."""
    langs = [char_lang(c) for c in sentence]
    first = next((lang for lang in langs if lang), default)
    runs: list[list] = []
    current: Lang = first
    for ch, lang in zip(sentence, langs):
        if lang and lang != current:
            current = lang
            runs.append([lang, ch])
        elif runs:
            runs[-1][1] += ch
        else:
            runs.append([current, ch])
    return [Run(text.strip(), lang) for lang, text in runs if text.strip()]


def segment(paragraph: str, default: Lang = "en") -> list[Sentence]:
    return [Sentence(s, tuple(tag_runs(s, default))) for s in split_sentences(paragraph)]
