"""The one exception hierarchy of bookcast.

It lives here, on the lowest floor, because every other package may import `ingest`; `mastering`
imports this module and nothing else of ours. Messages are meant for a user: they name the file and
the problem on one line.
"""
from __future__ import annotations

from pathlib import Path


class BookcastError(Exception):
    """Base of every error bookcast raises on purpose; the CLI prints it as one line, exit 1."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(BookcastError):
    """A book, script or project file is missing, unreadable or malformed."""


class UnsupportedError(BookcastError):
    """The input is valid but uses something bookcast does not handle (a language, a version)."""


class VoiceError(BookcastError):
    """A voice folder, its weights or reference clips are missing or invalid."""


class SynthesisError(BookcastError):
    """An engine failed to turn text into audio."""


class MasteringError(BookcastError):
    """Audio could not be mastered, encoded or written."""


class OutputError(BookcastError):
    """An output location cannot be written (permissions, disk full)."""
