"""synth's errors, under the one hierarchy rooted in `ingest.errors.BookcastError`."""
from __future__ import annotations

from ingest.errors import BookcastError


class VoiceError(BookcastError):
    """A voice folder, its weights or reference clips are missing or invalid."""


class SynthesisError(BookcastError):
    """An engine failed to turn text into audio."""
