"""Atomic output: a delivered file is either complete or absent, never half-written.

Writers write into a temporary file in the destination's own folder (so the final rename stays on
one filesystem and is atomic), then `os.replace` it over the destination. Any failure removes the
temporary file; an OSError becomes an OutputError naming the destination.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ingest.errors import OutputError

# The process's umask, read once at import (os.umask can only be read by setting it). Delivered
# files get ordinary permissions (0666 less the umask, usually 0644) rather than mkstemp's 0600, so
# a web server can read a published feed and its episodes.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on normal exit it replaces `path` atomically.

    Raises OutputError (naming `path`) when the folder cannot be created or written; any other
    exception from the body propagates after the temporary file is removed.
    """
    dest = Path(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror or exc})", dest) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write file ({exc.strerror or exc})", dest) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically. Raises OutputError."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path: str | Path, data: object) -> Path:
    """Write `data` as pretty UTF-8 JSON (manifests, QC reports) atomically. Raises OutputError,
    or TypeError when `data` holds something JSON cannot represent (a programming error)."""
    text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))
