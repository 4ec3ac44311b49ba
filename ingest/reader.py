"""One entry point for any supported book or script file."""
from __future__ import annotations

from pathlib import Path

from ingest.epub import read_epub
from ingest.errors import InputError
from ingest.markdown import read_markdown
from ingest.model import Book

_READERS = {".epub": read_epub, ".md": read_markdown, ".markdown": read_markdown, ".txt": read_markdown}


def read_book(path: str | Path) -> Book:
    """Read an EPUB or Markdown file into a Book. Raises InputError / UnsupportedError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected an .epub or .md file", path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"unsupported file type {path.suffix or '(none)'}; expected .epub or .md", path)
    return reader(path)
