"""Synthesis of a chapter's lines: what the clip cache lacks goes to the pool in length-bucketed
batches; each finished batch is stored (with its clip-QC stats) and dropped as it arrives.

A `Synthesis` bundles what every synthesizing step needs — the pool, the engine spec, the voice
fingerprint, the clip cache and the seed — so steps take one argument instead of six.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from ingest.errors import raise_if_stopped
from ingest.script import Line
from ingest.segment import Sentence
from mastering.clipqc import clip_stats
from mastering.presets import Preset
from synth.cache import ClipCache, clip_key
from synth.engines import clip_fingerprint
from synth.errors import SynthesisError
from synth.jobs import EngineSpec, bucket_batches, settings_dict, settings_tuple
from synth.pool import Pool

if TYPE_CHECKING:
    from synth.g2p.lexicon import Lexicon

log = logging.getLogger(__name__)


RETAKE_SEED_STEP = 7919  # a prime: take seeds never collide with neighbouring base seeds


def retake_seed(seed: int, take: int) -> int:
    """The seed of take number `take` (0: the first) of a sentence, for a project seeded `seed`."""
    return seed + take * RETAKE_SEED_STEP


@dataclass(frozen=True)
class Synthesis:
    """Where sentences are synthesized and kept (the same for books and podcast episodes)."""

    pool: Pool
    spec: EngineSpec
    fingerprint: str  # the workers' (voice + lexicon version): results from another are refused
    cache: ClipCache
    seed: int = 0

    @functools.cached_property
    def lexicon(self) -> Lexicon | None:
        """The lexicon the engine reads, for the entries that key each sentence's clip."""
        if not self.spec.lexicon or not self.spec.info.uses_lexicon:
            return None
        from synth.g2p.lexicon import load_lexicon  # imports the G2P package (pypinyin: 1 s)

        return load_lexicon(self.spec.lexicon)

    def key(self, sentence: Sentence, take: int | None = None) -> str:
        """The clip-cache key of `sentence`'s take number `take` (None or 0: the first)."""
        return sentence_key(sentence, self.fingerprint, retake_seed(self.seed, take or 0), self.lexicon)


def sentence_key(sentence: Sentence, fingerprint: str, seed: int, lexicon: "Lexicon | None") -> str:
    """The one definition of a sentence's clip key for a worker `fingerprint`: its voice, the seed
    and the lexicon entries that apply to this sentence (not the whole lexicon)."""
    entries = lexicon.entries_in([r.text for r in sentence.runs]) if lexicon else ()
    return clip_key(sentence, clip_fingerprint(fingerprint), seed, entries)


@dataclass(frozen=True)
class ChapterClips:
    """What synthesis hands to export: cache keys in script order, and what it cost."""

    keys: tuple[str, ...]
    synthesized: int
    reused: int
    audio_s: float
    retakes: int = 0
    flags: tuple[dict, ...] = ()  # clip-QC flags no re-take could fix
    seconds: float = 0.0  # wall time of synthesis and review


def synthesize(synth: Synthesis, lines: list[Line],
               on_batch: Callable[[int, float], None] = lambda n, s: None) -> ChapterClips:
    """Synthesize every sentence of `lines` missing from `cache`, in length-bucketed batches.

    Finished batches are stored as they arrive, so a failure or a kill loses only unfinished ones.
    Raises SynthesisError naming the first failed batch's text.
    """
    pool, spec, fingerprint, cache = synth.pool, synth.spec, synth.fingerprint, synth.cache
    keys = [synth.key(line.sentence, line.take) for line in lines]
    missing: dict[int, dict[str, Sentence]] = {}  # per seed (a chosen take has its own): key → sentence
    for key, line in zip(keys, lines):
        seed = retake_seed(synth.seed, line.take or 0)  # a key names its seed: it can only be in that one's
        if key not in missing.get(seed, {}) and not cache.has(key):
            missing.setdefault(seed, {})[key] = line.sentence
    todo = sum(len(m) for m in missing.values())
    on_batch(len(lines) - todo, 0.0)  # reused sentences count as done at once
    pending = {}
    for seed, sentences in missing.items():
        for batch in bucket_batches(list(sentences.items()), spec.batch_size, by_length=not spec.mixed_batches):
            batch_keys = [k for k, _ in batch]
            pending[pool.submit(spec, batch_keys, [s for _, s in batch], seed, clip_stats)] = batch
    batches = len(pending)
    audio_s = 0.0
    errors = []
    while pending:  # each result is stored and dropped as it arrives: a chapter's audio never piles up
        done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        raise_if_stopped()
        for future in done:
            batch = pending.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # a worker's failure, whatever its type; reported below
                errors.append(f"{type(exc).__name__}: {exc} (batch starting {batch[0][1].text[:40]!r})")
                continue
            if result.fingerprint != fingerprint:  # a worker with another voice must not fill this cache
                errors.append(f"worker {result.worker} synthesizes with {result.fingerprint[:16]}…, "
                              f"not the run's voice {fingerprint[:16]}…")
                continue
            seconds = sum(store(cache, key, sentence, result, i) for i, (key, sentence) in enumerate(batch))
            audio_s += seconds
            on_batch(len(batch), seconds)
    if errors:
        raise SynthesisError(f"{len(errors)} of {batches} batches failed: {errors[0]}")
    return ChapterClips(tuple(keys), todo, len(lines) - todo, audio_s)


def synthesize_take(synth: Synthesis, sentence: Sentence, number: int, **extra: object) -> str:
    """Take `number` of one sentence into the cache, unless it is there; returns its key
    (clip-QC re-takes and the studio's). Raises SynthesisError when the worker answers with another
    voice than the run's. `extra` goes into the clip's sidecar."""
    key = synth.key(sentence, number)
    if not synth.cache.has(key):
        result = synth.pool.submit(synth.spec, [key], [sentence], retake_seed(synth.seed, number), clip_stats).result()
        if result.fingerprint != synth.fingerprint:
            raise SynthesisError(f"worker {result.worker} synthesizes with {result.fingerprint[:16]}…, "
                                 f"not the run's voice {synth.fingerprint[:16]}…")
        store(synth.cache, key, sentence, result, 0, **extra)
    return key


def store(cache: ClipCache, key: str, sentence, result, i: int, **extra: object) -> float:
    """Put clip `i` of a batch result into the cache with its QC stats; returns its duration."""
    meta = {"fingerprint": result.fingerprint, "worker": result.worker, **extra}
    if result.stats:
        meta["stats"] = result.stats[i]
    return cache.put(key, result.flac[i], sentence, meta)


def iter_clips(cache: ClipCache, keys: Sequence[str]) -> Iterator[np.ndarray]:
    """Each clip's audio in order, read (and checksum-verified) one at a time as stitching asks.
    Raises SynthesisError when one has vanished or is corrupt (the next run synthesizes it)."""
    for key in keys:
        clip = cache.get(key)
        if clip is None:
            raise SynthesisError(f"clip {key[:12]} vanished from the cache (corrupt?); run again")
        yield clip.audio


def engine_spec(engine: str, voice: Path | None, lexicon: Path | None, settings: dict | None = None) -> EngineSpec:
    """How workers build the project's engine (`settings`: its [voice] settings); the lexicon's
    contents are part of the spec, so an edited lexicon gets a freshly built engine."""
    sha = hashlib.sha256(lexicon.read_bytes()).hexdigest() if lexicon is not None and lexicon.is_file() else ""
    return EngineSpec(engine, str(voice) if voice else None, str(lexicon) if lexicon else None,
                      settings_tuple(settings or {}), sha)


def clip_rate(cache: ClipCache, keys: Sequence[str], preset: Preset) -> int:
    """The engine's sample rate, from the first clip's sidecar (all clips of a run share it)."""
    meta = cache.meta(keys[0]) if keys else None
    return int(meta["sample_rate"]) if meta else preset.sample_rate




def engine_settings(spec: EngineSpec) -> dict:
    """The engine's settings as it uses them, defaults filled in (espeak: rate, pitch and the voice
    per language), for the manifest."""
    check = spec.info.settings_check
    return check(settings_dict(spec.settings)) if check is not None else settings_dict(spec.settings)
