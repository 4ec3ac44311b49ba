"""Clip QC inside synthesis: flag takes a listener would notice (GPT-SoVITS skips and repeats show up
as a duration per character far from the chapter's, plus clipped or silent takes), re-take them with
new seeds, and report what could not be fixed. Plain code; the synthesis task calls it.

Re-takes are cached like any clip (their seed is part of the key), and the choice is a pure function
of the cached takes, so a rerun makes the same choice without synthesizing again.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from flows.steps.synthesis import Synthesis, synthesize_take
from ingest.script import Line
from mastering.clipqc import ClipStats, clip_stats, flags_from_stats, retake_flagged
from synth.errors import SynthesisError

MAX_RETAKES = 2  # new takes tried per flagged clip


@dataclass(frozen=True)
class RetakeOutcome:
    keys: tuple[str, ...]  # the chosen take per line
    retakes: int  # lines whose take was replaced
    unresolved: tuple[dict, ...]  # ClipFlag dicts still present after the last attempt


def review(synth: Synthesis, lines: list[Line], keys: tuple[str, ...], max_attempts: int = MAX_RETAKES
           ) -> RetakeOutcome:
    """Flag this chapter's clips and re-take flagged ones (deterministic engines are only flagged).

    Judged on the stats in the clip cache's sidecars: no clip's audio is read here. Speaking rate
    is judged on the spoken form ("1906" is read as four words, not four characters). A take the
    producer chose in proofing (`Line.take`) is kept as it is.
    """
    if not lines:
        return RetakeOutcome(keys, 0, ())
    spec, cache = synth.spec, synth.cache
    texts = [line.sentence.spoken for line in lines]

    def measure(key: str) -> ClipStats:
        stats = cache.clip_stats(key, clip_stats)
        if stats is None:
            raise SynthesisError(f"clip {key[:12]} vanished from the cache (corrupt?); run again")
        return ClipStats.from_dict(stats)

    if not spec.stochastic:
        return RetakeOutcome(keys, 0, tuple(asdict(f) for f in flags_from_stats([measure(k) for k in keys], texts)))

    def resynthesize(index: int, attempt: int) -> str:
        if lines[index].take is not None:
            return keys[index]
        return synthesize_take(synth, lines[index].sentence, attempt, retake_of=keys[index])

    chosen, unresolved = retake_flagged(list(keys), measure, texts, resynthesize, max_attempts)
    retakes = sum(a != b for a, b in zip(chosen, keys))
    return RetakeOutcome(tuple(chosen), retakes, tuple(asdict(f) for f in unresolved))
