"""The engine Protocol: sentences (language runs) in, float32 audio at the engine's rate out.

Engines never normalise loudness or convert to int16: gain belongs to mastering. A fingerprint names
everything that changes the sound (weights, settings) so the clip cache can key on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ingest.segment import Sentence


@dataclass(frozen=True)
class Clip:
    """One synthesized sentence: mono float32 in [-1, 1] at `sample_rate`."""

    audio: np.ndarray = field(repr=False)
    sample_rate: int
    text: str = ""

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


@runtime_checkable
class Engine(Protocol):
    name: str
    sample_rate: int

    def fingerprint(self) -> str:
        """A stable string that changes whenever the engine would sound different."""
        ...

    def synthesize(self, sentences: Sequence[Sentence], seed: int = 0) -> list[Clip]:
        """One clip per sentence, in order. Raises SynthesisError."""
        ...
