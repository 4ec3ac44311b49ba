"""One entry point for any supported book or script file."""
from __future__ import annotations

from pathlib import Path

from ingest.epub import read_epub
from ingest.errors import InputError
from ingest.markdown import read_markdown
from ingest.model import Book
from ingest.reading import DEFAULT, Reading

# More files than any book needs (the Bible's 1,189 chapters fit): beyond this an input is a
# generated or broken table of contents, and each chapter costs a task, a file and a tag.
MAX_CHAPTERS = 2_000

_READERS = {".epub": read_epub, ".md": read_markdown, ".markdown": read_markdown, ".txt": read_markdown}


def read_book(path: str | Path, reading: Reading = DEFAULT) -> Book:
    """Read an EPUB or Markdown file into a Book (`reading`: the project's [reading] choices).
    Raises InputError / UnsupportedError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected an .epub or .md file", path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"unsupported file type {path.suffix or '(none)'}; expected .epub or .md", path)
    book = reader(path, reading)
    if len(book.chapters) > MAX_CHAPTERS:
        raise InputError(f"has {len(book.chapters):,} chapters; bookcast makes at most {MAX_CHAPTERS:,} chapter "
                         f"files per book (join sections under fewer headings)", path)
    return book
