"""One run per output folder: a second `bookcast make` on the same project refuses clearly instead of
interleaving writes. An OS file lock (flock) is released by the kernel when its process dies, so a
killed run never leaves a stale lock behind."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from ingest.errors import BookcastError, OutputError


class Busy(BookcastError):
    """Another run holds the output folder."""


def probe(folder: Path, what: str = "bookcast run") -> None:
    """Raise Busy now if another process holds `folder`'s lock (taken and released at once: the
    run takes it for real later). A folder that does not exist yet is free."""
    if (folder / ".lock").exists():
        with exclusive(folder, what):
            pass


@contextlib.contextmanager
def exclusive(folder: Path, what: str = "bookcast run") -> Iterator[None]:
    """Hold `<folder>/.lock` for the duration. Raises Busy if another process holds it, OutputError if
    the folder cannot be written."""
    path = folder / ".lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror or exc})", folder) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise Busy(f"another {what} is using this folder (pid {holder}); wait for it to finish",
                       folder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
