"""Markdown scripts: heading levels start chapters, front matter, code/comment skipping, pauses."""
from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import InputError
from ingest.markdown import read_markdown
from ingest.reader import read_book
from ingest.reading import Reading
from ingest.script import chapter_script

SCRIPT = """---
title: Test Script
author: Jo
language: en
date: 2025-03-01
---
<!-- hidden note -->
# One

First paragraph. Second sentence!

```python
print("secret code")
```

    indented code is skipped too

[pause 1.5s]

## Two

- a list item
- another

### A subheading

Inline `code` is read. <span>html</span> text.
"""


def write(tmp_path: Path, text: str, name: str = "s.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_headings_front_matter_and_skipping(tmp_path: Path) -> None:
    book = read_markdown(write(tmp_path, SCRIPT))
    assert book.meta.title == "Test Script" and book.meta.author == "Jo" and book.meta.year == "2025"
    assert [c.title for c in book.chapters] == ["One", "Two"]
    text = " ".join(c.text for c in book.chapters)
    assert "secret" not in text and "indented" not in text and "hidden" not in text
    assert "Inline code is read." in text
    assert [b.kind for b in book.chapters[1].blocks] == ["heading", "paragraph", "paragraph", "heading", "paragraph"]
    pause = [b for b in book.chapters[0].blocks if b.kind == "section_break"]
    assert pause and pause[0].pause_s == 1.5


def test_single_h1_over_h2_is_the_book_title(tmp_path: Path) -> None:
    book = read_markdown(write(tmp_path, "# My Book\n\n## Ch A\n\nText a.\n\n## Ch B\n\nText b.\n"))
    assert book.meta.title == "My Book"
    assert [c.title for c in book.chapters] == ["Ch A", "Ch B"]


def test_script_boundaries_drive_pauses(tmp_path: Path) -> None:
    book = read_markdown(write(tmp_path, SCRIPT), Reading(code="skip"))  # by default a code block gets a note
    lines = chapter_script(book.chapters[0])
    assert [ln.boundary for ln in lines] == ["heading", "sentence", "section_break"]
    assert lines[-1].pause_s == 1.5


@pytest.mark.parametrize("text,problem", [
    ("---\ntitle: [unclosed\n---\n# A\n\ntext\n", "front matter"),
    ("---\n- a list\n---\n# A\n\ntext\n", "mapping"),
    ("```\nonly code\n```\n", "no readable text"),
])
def test_bad_markdown(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=problem) as err:
        read_markdown(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_invalid_utf8_and_unknown_suffix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"# Title\n\n\xff\xfe broken")
    with pytest.raises(InputError, match="UTF-8"):
        read_book(bad)
    with pytest.raises(InputError, match="unsupported file type"):
        read_book(write(tmp_path, "x", "book.pdf"))


def test_an_ornament_paragraph_is_a_scene_break(tmp_path: Path) -> None:
    book = read_markdown(write(tmp_path, "# One\n\nThe lamp was lit.\n\n⁂\n\nDawn came.\n\n~ ~ ~\n\nEnd.\n"))
    assert [b.kind for b in book.chapters[0].blocks] == ["heading", "paragraph", "section_break", "paragraph",
                                                        "section_break", "paragraph"]
