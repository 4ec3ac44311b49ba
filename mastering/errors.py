"""mastering's errors, under the one hierarchy rooted in `ingest.errors.BookcastError`."""
from __future__ import annotations

from ingest.errors import BookcastError


class MasteringError(BookcastError):
    """Audio could not be mastered, encoded or written."""
