"""What the reader does with text that is not prose: code, tables, equations, figures, line
numbers, copyright pages and back matter — read it, skip it, or say a short note in its place.

Decided by the element's semantics (tags, epub:type, ARIA roles, class hints, a copyright-page
detector), configurable per project (`[reading]` in project.toml), and every decision is recorded
(`model.Skip`) so `bookcast preview` lists what is not read and why.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Literal

Action = Literal["read", "skip", "note"]
ACTIONS = ("read", "skip", "note")


@dataclass(frozen=True)
class Reading:
    """Per kind of element: "read" it as text, "skip" it, or "note" (a short spoken note instead).

    `toc_depth`: how deep in an EPUB's table of contents an entry still starts a chapter file
    (1: top level; deeper entries are read inside their parent chapter). 0 (the default) decides
    per entry: sub-entries are read inside a parent that has text of its own (a chapter and its
    sections), and become chapters under a parent that is only a title (a part and its chapters). `verse`: lines of poetry
    get a short pause each, the stanza's end a paragraph's (off: read as running prose)."""

    code: Action = "note"
    tables: Action = "note"
    math: Action = "note"  # MathML alttext and simple inline TeX are read whatever this says
    figures: Action = "skip"
    line_numbers: Action = "skip"
    back_matter: Action = "skip"  # bibliography, index, notes, ads (listed by preview)
    copyright: Action = "skip"  # copyright/legal pages, typed or detected
    footnotes: Action = "skip"  # "read": each note where the book puts it, a standalone one after "Note."
    toc_depth: int = 0
    verse: bool = True

    @classmethod
    def from_table(cls, table: dict, where: str) -> "Reading":
        """From project.toml's [reading] table. Raises ValueError naming the bad key or value."""
        known = {f.name: f for f in fields(cls)}
        values: dict = {}
        for key, value in table.items():
            if key not in known:
                raise ValueError(f"[reading] has no setting {key!r}; known: {', '.join(sorted(known))}")
            if key == "toc_depth":
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 6:
                    raise ValueError(f"[reading] toc_depth must be a whole number from 0 (automatic) to 6, "
                                     f"got {value!r}")
            elif key == "verse":
                if not isinstance(value, bool):
                    raise ValueError(f"[reading] verse must be true or false, got {value!r}")
            elif key == "footnotes" and value not in ("read", "skip"):
                raise ValueError(f"[reading] footnotes must be read or skip, got {value!r}")
            elif value not in ACTIONS:
                raise ValueError(f"[reading] {key} must be one of {', '.join(ACTIONS)}, got {value!r}")
            values[key] = value
        return cls(**values)


DEFAULT = Reading()

_NOTES = {
    "en": {"code": "A code listing follows; see the book.", "table": "A table follows; see the book.",
           "math": "An equation follows; see the book.", "figure": "A figure follows; see the book.",
           "math-inline": "a formula", "footnote": "Note."},
    "zh": {"code": "此处有一段代码，请参阅原书。", "table": "此处有一个表格，请参阅原书。",
           "math": "此处有一个公式，请参阅原书。", "figure": "此处有一幅插图，请参阅原书。", "math-inline": "一个公式",
           "footnote": "注释："},
}


def note_text(what: str, language: str) -> str:
    """The spoken note standing for an element of kind `what`, in the book's language."""
    notes = _NOTES["zh" if language.lower().startswith("zh") else "en"]
    return notes.get(what, notes["figure"])


# ---- copyright / legal pages ------------------------------------------------------------------

_LEGAL = [re.compile(p, re.I) for p in (
    r"©|\(c\)\s*\d{4}|\bcopyright\b", r"all rights reserved", r"\bISBN\b", r"\bpublished by\b|\bpublisher\b",
    r"\bprinted in\b", r"library of congress|cataloging", r"[\w.+-]+@[\w-]+\.[\w.]+",
    r"\+?\d[\d\s().-]{8,}\d", r"版权所有|著作权|出版社|书号", r"\bfirst (edition|published)\b",
    r"\bno part of this\b")]


_STRONG = re.compile(r"©|\bcopyright\b|all rights reserved|\bISBN\b|library of congress|版权所有|著作权", re.I)


def looks_like_legal_text(text: str) -> bool:
    """A copyright/imprint page, typed or not: short, with a copyright or ISBN line and more legal
    or imprint signals (publisher, printing, an e-mail, a phone number ...)."""
    words = len(text.split())
    if words > 600 or not _STRONG.search(text):
        return False
    hits = sum(1 for pattern in _LEGAL if pattern.search(text))
    return hits >= 3 or (hits >= 2 and words < 150)


# ---- back matter, by title ---------------------------------------------------------------------

_BACK_MATTER = re.compile(
    r"^\s*(bibliography|references|works cited|index|notes|endnotes|notes on the text|glossary|"
    r"also by|other books by|about the publisher|advertisements?|colophon|"
    r"参考文献|索引|注释|附注)\s*[.:]?\s*$", re.I)


def is_back_matter(title: str) -> bool:
    return bool(_BACK_MATTER.match(title or ""))
