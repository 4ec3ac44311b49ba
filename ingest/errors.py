"""The root of bookcast's one exception hierarchy, and the process-wide stop request.

It lives here, on the lowest floor, because every other package may import it; `mastering` imports
this module and nothing else of ours. Each package adds its own subclasses in its own folder
(`synth.errors`: VoiceError, SynthesisError; `mastering.errors`: MasteringError). Messages are meant
for a user: they name the file and the problem on one line.
"""
from __future__ import annotations

import threading
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


class OutputError(BookcastError):
    """An output location cannot be written (permissions, disk full)."""


class Interrupted(BookcastError):
    """The user asked the run to stop (Ctrl-C, SIGTERM); everything finished so far is kept."""


# A process-wide stop request. The CLI sets it on Ctrl-C / SIGTERM; long loops everywhere (block
# passes of mastering, waiting for synthesis, stitching) call `raise_if_stopped` between steps,
# so a run stops within moments without being torn down mid-write. It lives on this ground floor
# because every package may import it.
stop_requested = threading.Event()


def raise_if_stopped() -> None:
    """Raise Interrupted when a stop was requested."""
    if stop_requested.is_set():
        raise Interrupted("stopped on request; run the same command again to resume")
