"""Grapheme-to-phoneme for the GPT-SoVITS engine: normalised runs -> v2 phones with alignment.

The espeak engine speaks the runs' text directly; GPT-SoVITS needs phones from its own inventory
(symbols_v2.json) and, for Chinese, one BERT feature per character, which `word2ph` spreads over
that character's phones. Use `G2P(lexicon).sentence(sentence)` or `phonemize(sentence)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ingest.segment import Lang, Run, Sentence
from synth.errors import SynthesisError
from synth.g2p.en import EnglishG2P
from synth.g2p.lexicon import Lexicon, load_lexicon
from synth.g2p.symbols import phones_to_ids, symbols
from synth.g2p.zh import ChineseG2P

__all__ = ["G2P", "PhoneRun", "Lexicon", "load_lexicon", "phonemize", "phones_to_ids", "symbols",
           "pad_like_reference"]


@dataclass(frozen=True)
class PhoneRun:
    """The phones of one language run.

    text: zh - the characters BERT sees, exactly one per `word2ph` entry (Han and , . ! ? … -);
          en - the normalised English text.
    phones: v2 symbols; word2ph: zh only, phones per character (sum == len(phones)); None for en,
    whose BERT features are zeros in GPT-SoVITS v2.
    """

    lang: Lang
    text: str
    phones: tuple[str, ...]
    word2ph: tuple[int, ...] | None = None

    @property
    def ids(self) -> list[int]:
        return phones_to_ids(self.phones)


class G2P:
    """Loads dictionaries once; reuse one instance for a whole book (it caches per word)."""

    def __init__(self, lexicon: Lexicon | str | Path | None = None) -> None:
        if isinstance(lexicon, (str, Path)):
            lexicon = load_lexicon(lexicon)
        lexicon = lexicon or Lexicon()
        self.zh = ChineseG2P(lexicon.zh)
        self.en = EnglishG2P(lexicon.en)

    def run(self, run: Run) -> PhoneRun:
        """Phones for one run. Raises SynthesisError for a language it cannot phonemise."""
        if run.lang == "zh":
            text, phones, word2ph = self.zh(run.text)
            return PhoneRun("zh", text, tuple(phones), tuple(word2ph))
        if run.lang == "en":
            return PhoneRun("en", run.text, tuple(self.en(run.text)), None)
        raise SynthesisError(f"no G2P for language {run.lang!r}")

    def sentence(self, sentence: Sentence) -> list[PhoneRun]:
        """Phones per run, skipping runs that have nothing to say (punctuation only)."""
        out = [self.run(r) for r in sentence.runs]
        return [p for p in out if any(ph not in ",.!?…-" for ph in p.phones)]

    __call__ = sentence


@lru_cache(maxsize=1)
def _default() -> G2P:
    return G2P()


def phonemize(sentence: Sentence) -> list[PhoneRun]:
    """`G2P().sentence` with a shared instance and no user lexicon."""
    return _default().sentence(sentence)


def pad_like_reference(runs: Sequence[PhoneRun]) -> list[PhoneRun]:
    """The padding the reference pipeline applies before its text encoder: an English run of
    fewer than 4 phones gets a leading ',', and a sentence of fewer than 6 phones a leading '.'
    (GPT-SoVITS was trained with these and mumbles very short inputs without them)."""
    out = [PhoneRun(r.lang, r.text, (",", *r.phones), None)
           if r.lang == "en" and len(r.phones) < 4 else r for r in runs]
    if out and sum(len(r.phones) for r in out) < 6:
        first = out[0]
        if first.word2ph is not None:
            out[0] = PhoneRun(first.lang, "." + first.text, (".", *first.phones), (1, *first.word2ph))
        else:
            out[0] = PhoneRun(first.lang, first.text, (".", *first.phones), None)
    return out
