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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ingest.segment import Sentence
from synth.cache import encode_clip
from synth.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine: `espeak`, or `gpt-sovits` with a voice folder (a path the worker can read)."""

    kind: str = "espeak"
    voice: str | None = None
    batch_size: int = 16  # sentences per batch sent to a worker (GPT-SoVITS decodes them together)
    lexicon: str | None = None  # a project's pronunciation lexicon (GPT-SoVITS G2P)

    @property
    def uses_gpu(self) -> bool:
        """Whether workers should be placed one per GPU (espeak runs on CPU cores only)."""
        return self.kind != "espeak"

    @property
    def stochastic(self) -> bool:
        """Whether a new seed gives a new take (espeak is deterministic: re-takes would not help)."""
        return self.kind != "espeak"

    def build(self) -> Engine:
        from synth.registry import make_engine

        return make_engine(self.kind, Path(self.voice) if self.voice else None,
                           Path(self.lexicon) if self.lexicon else None)


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
            started = time.perf_counter()
            engine = _engines[spec] = spec.build()
            log.info("built %s engine in %.1f s", spec.kind, time.perf_counter() - started)
        return engine


def engine_fingerprint(spec: EngineSpec) -> str:
    """The engine's own fingerprint, plus the lexicon's contents when one changes pronunciations."""
    fingerprint = engine_for(spec).fingerprint()
    if spec.lexicon and spec.kind != "espeak":
        import hashlib

        fingerprint += "/lex-" + hashlib.sha256(Path(spec.lexicon).read_bytes()).hexdigest()[:16]
    return fingerprint


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


def bucket_batches(items: Sequence[tuple[str, Sentence]], batch_size: int) -> list[list[tuple[str, Sentence]]]:
    """Group sentences of similar length, so a batched decoder pads little and finishes rows together."""
    ordered = sorted(items, key=lambda kv: len(kv[1].text))
    size = max(1, batch_size)
    return [list(ordered[i:i + size]) for i in range(0, len(ordered), size)]
