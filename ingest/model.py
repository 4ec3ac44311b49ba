"""The shared document model: a book is chapters of blocks, plus metadata.

Both EPUB and Markdown readers produce it; everything downstream (segmentation, synthesis,
mastering, tags) reads only this, so a new input format is one reader away.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

# "line": a line of verse — a short pause after it, the stanza's last line a paragraph's.
BlockKind = Literal["heading", "paragraph", "section_break", "line"]


@dataclass(frozen=True)
class Block:
    """One unit of text read aloud; `kind` decides the pause that follows it."""

    text: str
    kind: BlockKind = "paragraph"
    pause_s: float | None = None  # explicit pause (a script's `[pause 2s]`); None = preset's pause
    note: str = ""  # a spoken note standing for source text not read (the Skip's `what`), else ""


@dataclass(frozen=True)
class Skip:
    """Source text that is not read as written, and why — listed by `preview` so a producer sees
    what a book will not say before spending GPU hours on it.

    `action` is "skip" (left out) or "note" (a short spoken note stands for it); `what` is the kind
    of element (code, table, math, figure, line-number, markup, copyright, back-matter, toc ...)."""

    what: str
    action: str
    words: int
    excerpt: str = ""

    def to_dict(self) -> dict:
        return {"what": self.what, "action": self.action, "words": self.words, "excerpt": self.excerpt}


def skip_of(what: str, action: str, text: str) -> Skip:
    """A Skip of `text` (its words counted as a reader would: CJK characters one each)."""
    return Skip(what, action, count_words(text), " ".join(text.split())[:80])


CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")  # Han characters (counted as words)
# A paragraph of nothing but ornaments ('* * *', '⁂', '~', '• • •', '# # #', '❦'): a scene break a
# narrator pauses at, not text. Gutenberg books set them as paragraphs far more often than <hr>.
_DINKUS = re.compile(r"[\s*⁂~•·∙#◆◇❖❦❧✻✳✣✤✦✧☙♦○●◦—–-]+")


def is_scene_break(text: str) -> bool:
    """Whether a paragraph's text is only a scene-break ornament."""
    stripped = text.strip()
    return bool(stripped) and len(stripped) <= 40 and _DINKUS.fullmatch(stripped) is not None


def count_words(text: str) -> int:
    """Words of source text: whitespace-separated words, each CJK character counting as one."""
    cjk = len(CJK.findall(text))
    return cjk + len(CJK.sub(" ", text).split())


@dataclass(frozen=True)
class Chapter:
    """A chapter (or podcast segment): a title and its blocks in reading order."""

    title: str
    blocks: tuple[Block, ...]
    source: str = ""  # where it came from (file#anchor), for error messages
    skipped: tuple[Skip, ...] = ()  # what the reader did not read as written, in order

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
    # Whole documents or sections left out (copyright page, back matter), with their titles.
    left_out: tuple[tuple[str, Skip], ...] = ()
    # The book's own pronunciations (EPUB PLS lexicons, ssml:ph on single words): word → IPA.
    pronunciations: tuple[tuple[str, str], ...] = ()

    @property
    def slug(self) -> str:
        return slugify(self.meta.title) or "book"


def slugify(text: str) -> str:
    """A filesystem-safe name; keeps CJK characters so Chinese titles stay readable."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = re.sub(r"[^\w\u4e00-\u9fff]+", "-", text)
    return text.strip("-_")[:80]
