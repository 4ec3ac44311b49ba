"""synth's errors, under the one hierarchy rooted in `ingest.errors.BookcastError`."""
from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

from ingest.errors import BookcastError


class VoiceError(BookcastError):
    """A voice folder, its weights or reference clips are missing or invalid."""


class SynthesisError(BookcastError):
    """An engine failed to turn text into audio."""


class WorkersDied(SynthesisError, BrokenProcessPool):
    """Worker processes (synthesis or mastering) kept dying after every restart. Also a
    BrokenProcessPool, which is what a pool's callers already handle."""
