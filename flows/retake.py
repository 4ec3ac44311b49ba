"""Clip QC inside synthesis: flag takes a listener would notice (GPT-SoVITS skips and repeats show up
as a duration per character far from the chapter's, plus clipped or silent takes), re-take them with
new seeds, and report what could not be fixed. Plain code; the synthesis task calls it.

Re-takes are cached like any clip (their seed is part of the key), and the choice is a pure function
of the cached takes, so a rerun makes the same choice without synthesizing again.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ingest.script import Line
from mastering.clipqc import clip_flags, retake_flagged
from synth.cache import ClipCache, clip_key
from synth.jobs import EngineSpec
from synth.pool import Pool

RETAKE_SEED_STEP = 7919  # a prime: re-take seeds never collide with neighbouring base seeds
MAX_RETAKES = 2  # new takes tried per flagged clip


@dataclass(frozen=True)
class RetakeOutcome:
    keys: tuple[str, ...]  # the chosen take per line
    retakes: int  # lines whose take was replaced
    unresolved: tuple[dict, ...]  # ClipFlag dicts still present after the last attempt


def retake_seed(seed: int, attempt: int) -> int:
    return seed + attempt * RETAKE_SEED_STEP


def review(pool: Pool, spec: EngineSpec, fingerprint: str, cache: ClipCache, lines: list[Line],
           keys: tuple[str, ...], seed: int, max_attempts: int = MAX_RETAKES) -> RetakeOutcome:
    """Flag this chapter's clips and re-take flagged ones (deterministic engines are only flagged)."""
    from flows.chapter import load_clips

    if not lines:
        return RetakeOutcome(keys, 0, ())
    clips = load_clips(cache, keys)
    rate = clips[0].sample_rate
    texts = [line.sentence.text for line in lines]
    original = [c.audio for c in clips]
    if not spec.stochastic:
        return RetakeOutcome(keys, 0, tuple(asdict(f) for f in clip_flags(original, rate, texts)))
    takes: dict[int, tuple[str, np.ndarray]] = {}  # id(audio) → (key, audio): keeps arrays alive

    def resynthesize(index: int, attempt: int) -> np.ndarray:
        sentence, take_seed = lines[index].sentence, retake_seed(seed, attempt)
        key = clip_key(sentence, fingerprint, take_seed)
        if not cache.has(key):
            result = pool.submit(spec, [key], [sentence], take_seed).result()
            cache.put(key, result.flac[0], sentence, {"fingerprint": result.fingerprint, "worker": result.worker,
                                                      "retake_of": keys[index]})
        clip = cache.get(key)
        assert clip is not None
        takes[id(clip.audio)] = (key, clip.audio)
        return clip.audio

    chosen, unresolved = retake_flagged(original, rate, texts, resynthesize, max_attempts)
    new_keys = list(keys)
    for i, audio in enumerate(chosen):
        if audio is not original[i]:
            new_keys[i] = takes[id(audio)][0]
    retakes = sum(a != b for a, b in zip(new_keys, keys))
    return RetakeOutcome(tuple(new_keys), retakes, tuple(asdict(f) for f in unresolved))
