"""Sentences into what the GPT-SoVITS v2 models read: phone ids + per-phone BERT features.

This mirrors the reference TTS pipeline's text preparation for ONE sentence (its own sentence
splitting is replaced by ours, `ingest.segment`):
- runs of repeated `! ? … , . -` collapse to the first mark;
- a sentence whose first clause is shorter than 4 characters gets a leading `。`/`.` (the GPT tends
  to swallow very short openings otherwise), and one without final punctuation gets a final one;
- a sentence with no word characters at all is not spoken;
- each language run goes through the v2 G2P (phones, word2ph, normalised text) and BERT (real
  features for Chinese, zeros otherwise); if the whole sentence has fewer than 6 phones it is redone
  once with a leading `.`.
The reference transcript goes through the same front end and gets only the final-punctuation
rule (the reference's language mark: `.` for an English prompt, `。` otherwise).
Batches are formed like the reference's `to_batch` buckets: sorted by normalised-text length, cut
where the middle item falls below 0.75 of the batch mean.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ingest.segment import Run, Sentence, segment
from synth.errors import SynthesisError
from synth.engines.gpt_sovits.model.bert import BERT_DIM, BertFeatures, run_features

if TYPE_CHECKING:  # synth.g2p loads its dictionaries lazily; keep even its import off this path
    from synth.g2p import Lexicon

log = logging.getLogger(__name__)

# Clause-ending marks of the reference (its `splits`).
SPLITS = frozenset("，。？！,.?!~:：—…")
_REPEATABLE = "!?…,.-"
_REPEATED = re.compile(f"([{re.escape(_REPEATABLE)}])([{re.escape(_REPEATABLE)}])+")
_FIRST_CLAUSE = re.compile("[" + "".join(re.escape(c) for c in sorted(SPLITS)) + "]")
MIN_FIRST_CLAUSE = 4
MIN_PHONES = 6
BUCKET_THRESHOLD = 0.75

# A G2P as the engine calls it: (text, lang) -> (v2 phone ids, word2ph or None, normalised text)
Phonemizer = Callable[[str, str], tuple[list[int], list[int] | None, str]]


def default_g2p(lexicon: Lexicon | str | Path | None = None) -> Phonemizer:
    """The v2 G2P of `synth.g2p` as (text, lang) -> (phone ids, word2ph, normalised text).

    `lexicon`: a `synth.g2p.Lexicon` or the path of a user lexicon file. Dictionaries load on first
    use, so a voice without a transcript can load before any text is spoken. Like the reference's
    `clean_text`, an English run of fewer than 4 phones gets a leading ',' phone.
    """
    state: dict[str, Any] = {}

    def g2p(text: str, lang: str) -> tuple[list[int], list[int] | None, str]:
        from synth.g2p import G2P as G2PModel
        from synth.g2p import phones_to_ids

        model = state.get("g2p")
        if model is None:
            model = state["g2p"] = G2PModel(lexicon)
        lead: list[int] = []
        if lang == "en" and text.startswith("."):  # the reference's English tokenizer keeps it
            lead, text = phones_to_ids(["."]), text[1:]
        if not text.strip():
            return lead, None if lang == "en" else [], "." * len(lead)
        phones = model.run(Run(text, lang))  # type: ignore[arg-type]
        ids = lead + list(phones.ids)
        if lang == "en" and len(ids) < 4:
            ids = phones_to_ids([","]) + ids
        return ids, None if phones.word2ph is None else list(phones.word2ph), "." * len(lead) + phones.text

    return g2p


@dataclass(frozen=True)
class TextFeatures:
    """One sentence (or the prompt transcript) ready for the GPT."""

    phones: tuple[int, ...]
    bert: torch.Tensor  # (1024, n_phones) float32, CPU
    norm_text: str

    def __post_init__(self) -> None:
        assert self.bert.shape == (BERT_DIM, len(self.phones)), (self.bert.shape, len(self.phones))


def _end_mark(lang: str) -> str:
    return "." if lang == "en" else "。"


def _collapse_punctuation(text: str) -> str:
    return _REPEATED.sub(r"\1", text)


def _with_edges(runs: list[Run]) -> list[Run]:
    """Apply the leading short-clause and the trailing punctuation rules to a sentence's runs."""
    text = "".join(r.text for r in runs)
    first = _FIRST_CLAUSE.split(text)[0].strip()
    if text[0] not in SPLITS and len(first) < MIN_FIRST_CLAUSE:
        runs[0] = Run(_end_mark(runs[0].lang) + runs[0].text, runs[0].lang)
    if runs[-1].text[-1] not in SPLITS:
        runs[-1] = Run(runs[-1].text + _end_mark(runs[-1].lang), runs[-1].lang)
    return runs


def _features(runs: Sequence[Run], g2p: Phonemizer, bert: BertFeatures) -> TextFeatures:
    phones: list[int] = []
    feats: list[torch.Tensor] = []
    norm: list[str] = []
    for run in runs:
        text = re.sub(" {2,}", " ", run.text)
        ids, word2ph, norm_text = g2p(text, run.lang)
        feats.append(run_features(bert, run.lang, norm_text, word2ph, len(ids)))
        phones += ids
        norm.append(norm_text)
    bert_all = torch.cat(feats, dim=1) if feats else torch.zeros(BERT_DIM, 0)  # (1024, N)
    return TextFeatures(tuple(phones), bert_all, "".join(norm))


def phones_and_bert(runs: Sequence[Run], g2p: Phonemizer, bert: BertFeatures) -> TextFeatures:
    """Phones + BERT of language runs, redone with a leading '.' when under 6 phones."""
    out = _features(runs, g2p, bert)
    if len(out.phones) < MIN_PHONES:
        first = runs[0]
        out = _features([Run("." + first.text, first.lang), *runs[1:]], g2p, bert)
    return out


def sentence_features(sentence: Sentence, g2p: Phonemizer, bert: BertFeatures) -> TextFeatures | None:
    """A sentence's features, or None when it has nothing to speak (no word characters, or no
    phones after G2P). Raises SynthesisError when BERT and the phones disagree.
    """
    runs = [Run(_collapse_punctuation(r.text.strip("\n")), r.lang) for r in sentence.runs]
    runs = [r for r in runs if r.text]
    if not runs or not re.sub(r"\W+", "", "".join(r.text for r in runs)):
        return None
    feats = phones_and_bert(_with_edges(runs), g2p, bert)
    if not feats.phones or not feats.norm_text:  # the reference skips such a fragment too
        log.warning("nothing to speak in %r after G2P; skipped", sentence.text[:60])
        return None
    return feats


def transcript_runs(text: str, lang: str) -> list[Run]:
    """All language runs of a transcript (through the same front end as book text), merged."""
    runs: list[Run] = []
    for sentence in segment(text, default="en" if lang == "en" else "zh"):
        for run in sentence.runs:
            if runs and runs[-1].lang == run.lang:
                runs[-1] = Run(f"{runs[-1].text} {run.text}" if run.lang == "en" else runs[-1].text + run.text, run.lang)
            else:
                runs.append(run)
    return runs


def prompt_features(text: str, lang: str, g2p: Phonemizer, bert: BertFeatures) -> TextFeatures:
    """Features of the reference transcript: runs by script, final punctuation added.

    Raises SynthesisError when it yields no phones.
    """
    runs = [r for r in transcript_runs(text.strip(), lang) if r.text]
    if not runs:
        raise SynthesisError(f"nothing speakable in the reference transcript {text[:60]!r}")
    if runs[-1].text[-1] not in SPLITS:
        runs[-1] = Run(runs[-1].text + _end_mark(lang), runs[-1].lang)
    feats = phones_and_bert(runs, g2p, bert)
    if not feats.phones:
        raise SynthesisError(f"no phones for the reference transcript {text[:60]!r}")
    return feats


def bucket_batches(lengths: Sequence[int], batch_size: int, threshold: float = BUCKET_THRESHOLD) -> list[list[int]]:
    """Group item indices into batches of similar length (the reference's `to_batch` buckets).

    Sorted by length; from each start, take up to batch_size items and shrink until the middle
    item's length is at least `threshold` of the batch mean (a single item always qualifies).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])  # stable, like the reference sort
    batches: list[list[int]] = []
    pos = 0
    while pos < len(order):
        end = min(pos + batch_size, len(order))
        while end > pos:
            chunk = np.array([lengths[i] for i in order[pos:end]], dtype=np.float32)
            score = chunk[(end - pos) // 2] / (chunk.mean() + 1e-8)
            if score >= threshold or end - pos == 1:
                break
            end -= 1
        batches.append(order[pos:end])
        pos = end
    return batches
