"""The shared document model: a book is chapters of blocks, plus metadata.

Both EPUB and Markdown readers produce it; everything downstream (segmentation, synthesis,
mastering, tags) reads only this, so a new input format is one reader away.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading", "paragraph", "section_break"]


@dataclass(frozen=True)
class Block:
    """One unit of text read aloud; `kind` decides the pause that follows it."""

    text: str
    kind: BlockKind = "paragraph"
    pause_s: float | None = None  # explicit pause (a script's `[pause 2s]`); None = preset's pause


@dataclass(frozen=True)
class Chapter:
    """A chapter (or podcast segment): a title and its blocks in reading order."""

    title: str
    blocks: tuple[Block, ...]
    source: str = ""  # where it came from (file#anchor), for error messages

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks)


@dataclass(frozen=True)
class BookMeta:
    title: str
    author: str = ""
    language: str = "en"
    narrator: str = ""
    year: str = ""
    description: str = ""
    cover: bytes | None = field(default=None, repr=False)
    cover_mime: str = ""


@dataclass(frozen=True)
class Book:
    meta: BookMeta
    chapters: tuple[Chapter, ...]
    source: str = ""
    # What the reader left out or could not use, in words for the user (a symlink member, an
    # undecodable cover, an unclosed comment): shown by preview and make, never silent.
    notices: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return slugify(self.meta.title) or "book"


def slugify(text: str) -> str:
    """A filesystem-safe name; keeps CJK characters so Chinese titles stay readable."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = re.sub(r"[^\w\u4e00-\u9fff]+", "-", text)
    return text.strip("-_")[:80]
