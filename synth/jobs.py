"""Work units for synthesis workers: what to build (EngineSpec) and what to say (a batch).

Everything here is picklable and Prefect-free, so the same batch runs in-process, in a local worker
process pinned to one GPU, or on a Dask worker on another machine. A worker builds each engine once
(loading a GPT-SoVITS voice takes seconds) and keeps it for every later batch.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ingest.segment import Sentence
from synth.cache import encode_clip
from synth.engine import Engine
from synth.engines import EngineInfo, engine_info, make_engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine: its registry name and, when it has one, a voice folder and the
    project's lexicon (paths the worker can read). What the engine is and can do comes from its
    registry entry (`synth.engines`)."""

    kind: str
    voice: str | None = None
    lexicon: str | None = None
    settings: tuple[tuple[str, object], ...] = ()  # [voice] settings (hashable: nested tables as item tuples)
    lexicon_sha: str = ""  # sha256 of the lexicon file's bytes: an edited lexicon is another spec (a fresh engine)

    @property
    def info(self) -> EngineInfo:
        return engine_info(self.kind)

    @property
    def uses_gpu(self) -> bool:
        """Whether workers should be placed one per GPU."""
        return self.info.placement == "gpu"

    @property
    def stochastic(self) -> bool:
        """Whether a new seed gives a new take."""
        return not self.info.deterministic

    @property
    def batch_size(self) -> int:
        """Sentences per batch sent to a worker (the engine decodes a batch together)."""
        return self.info.batch_size(Path(self.voice) if self.voice else None)

    @property
    def mixed_batches(self) -> bool:
        """Whether batches are cut in reading order rather than by length (see bucket_batches)."""
        return self.info.mixed_batches(Path(self.voice) if self.voice else None)

    def build(self) -> Engine:
        return make_engine(self.kind, Path(self.voice) if self.voice else None,
                           Path(self.lexicon) if self.lexicon else None, settings_dict(self.settings))


def settings_tuple(settings: dict) -> tuple[tuple[str, object], ...]:
    """[voice] settings as a hashable, ordered tuple (a spec is a dict key in workers)."""
    return tuple(sorted((k, settings_tuple(v) if isinstance(v, dict) else v) for k, v in settings.items()))


def settings_dict(settings: tuple) -> dict:
    return {k: settings_dict(v) if isinstance(v, tuple) and v and isinstance(v[0], tuple) else v
            for k, v in settings}


@dataclass(frozen=True)
class BatchResult:
    keys: tuple[str, ...]
    flac: tuple[bytes, ...]  # one encoded clip per key (24-bit FLAC)
    fingerprint: str
    seconds: float  # wall time of the synthesis itself
    worker: str
    stats: tuple[dict, ...] = ()  # per clip, from the caller's `measure` (clip QC), if it gave one


Measure = Callable[[np.ndarray, int], object]  # (audio, rate) → something with .to_dict()


_engines: dict[EngineSpec, Engine] = {}
_engines_lock = threading.Lock()  # guards building/looking up engines
_synth_lock = threading.Lock()  # one synthesis at a time per process


def engine_for(spec: EngineSpec) -> Engine:
    """The process's engine for `spec`, built on first use."""
    with _engines_lock:
        engine = _engines.get(spec)
        if engine is None:
            # The same voice with an edited lexicon replaces the old engine (one model in memory).
            voice = replace(spec, lexicon=None, lexicon_sha="")
            for old in [s for s in _engines if replace(s, lexicon=None, lexicon_sha="") == voice]:
                del _engines[old]
            started = time.perf_counter()
            engine = _engines[spec] = spec.build()
            log.info("built %s engine in %.1f s", spec.kind, time.perf_counter() - started)
        return engine


def engine_fingerprint(spec: EngineSpec) -> str:
    """The identity of this worker's engine: voice and lexicon version (see `EngineInfo.fingerprint`)."""
    return spec.info.fingerprint(engine_for(spec), spec.lexicon_sha)


def run_batch(spec: EngineSpec, keys: Sequence[str], sentences: Sequence[Sentence], seed: int,
              measure: Measure | None = None) -> BatchResult:
    """Synthesize `sentences` (one batch) and return their clips encoded for the cache, with
    `measure(audio, rate).to_dict()` of each clip when given (so clip QC never decodes them again;
    the caller passes a picklable top-level function, keeping this module free of mastering)."""
    engine = engine_for(spec)
    started = time.perf_counter()
    with _synth_lock:  # engines keep per-process state (espeak's library, a model's buffers)
        clips = engine.synthesize(list(sentences), seed=seed)
    seconds = time.perf_counter() - started
    if len(clips) != len(sentences):
        raise RuntimeError(f"{spec.kind} returned {len(clips)} clips for {len(sentences)} sentences")
    stats = tuple(measure(c.audio, c.sample_rate).to_dict() for c in clips) if measure else ()  # type: ignore[attr-defined]
    return BatchResult(tuple(keys), tuple(encode_clip(c) for c in clips), engine_fingerprint(spec), seconds,
                       f"{socket.gethostname()}:{os.getpid()}", stats)


def bucket_batches(items: Sequence[tuple[str, Sentence]], batch_size: int,
                   by_length: bool = True) -> list[list[tuple[str, Sentence]]]:
    """Group sentences of similar length, so a batched decoder pads little and finishes rows together.

    `by_length=False` keeps the given (reading) order instead, for an engine that refills its slots
    as rows finish (EngineInfo.mixed_batches): a batch of mixed lengths fed longest first drains on
    its short sentences, while one of similar lengths ends on rows that all finish late."""
    ordered = sorted(items, key=lambda kv: len(kv[1].text)) if by_length else list(items)
    size = max(1, batch_size)
    return [list(ordered[i:i + size]) for i in range(0, len(ordered), size)]
