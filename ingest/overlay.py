"""Read-along markup: find each narrated sentence in an XHTML document and wrap it in an element with
an id, changing nothing else — the text, the markup and the attributes stay as the book had them.

Sentences are found by their letters and digits only (case-folded), in order: what the reader
cleaned (spacing, quotes, soft hyphens, a footnote mark) does not stop a match, and a sentence the
book does not contain (credits, a producer's edit, "a code listing follows") is simply not wrapped.
A sentence inside one text run becomes one `<span id=…>`; one that crosses inline markup (an
`<em>`, a link) is wrapped piece by piece, the id on the first piece and the other pieces marked
with the same `data-bookcast-sentence`, so the document's structure is never broken.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from lxml import etree

XHTML = "http://www.w3.org/1999/xhtml"
_OPAQUE = {"script", "style", "math", "svg", "head", "rt", "rp"}  # text a sentence never comes from


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _key_chars(c: str) -> str:
    """What one character of text contributes to a match: its letters and digits, case-folded,
    compatibility-decomposed (so "é" and "e" + combining accent, "ﬁ" and "fi" read alike)."""
    return "".join(k for k in unicodedata.normalize("NFKD", c).casefold() if k.isalnum())


def key_of(text: str) -> str:
    """The letters and digits of `text`, as the document's index is built: what matching compares."""
    return "".join(_key_chars(c) for c in text)


@dataclass
class Doc:
    """A parsed content document and the index of its text: `key` with, per key character, the
    text run (element, "text" | "tail") and offset it came from."""

    tree: etree._ElementTree
    runs: list[tuple[etree._Element, str]] = field(default_factory=list)
    key: str = ""
    where: list[tuple[int, int]] = field(default_factory=list)  # per key char: (run index, offset)
    pos: int = 0  # matching continues from here (sentences come in reading order)
    wraps: list[tuple[str, int, int]] = field(default_factory=list)  # (id, key start, key end)

    @classmethod
    def parse(cls, root: etree._Element) -> "Doc":
        doc = cls(root.getroottree())
        body = next((el for el in root.iter() if _local(el.tag) == "body"), root)
        chars: list[str] = []
        for n, (el, attr) in enumerate(_runs(body)):
            doc.runs.append((el, attr))
            text = getattr(el, attr) or ""
            for offset, c in enumerate(text):
                for k in _key_chars(c):
                    chars.append(k)
                    doc.where.append((n, offset))
        doc.key = "".join(chars)
        return doc

    def find(self, text: str, limit: int | None = None) -> tuple[int, int] | None:
        """The key range of `text` at or after `pos` (within `limit` key characters), or None."""
        key = key_of(text)
        if len(key) < 2:
            return None
        stop = len(self.key) if limit is None else min(len(self.key), self.pos + limit + len(key))
        at = self.key.find(key, self.pos, stop)
        return None if at < 0 else (at, at + len(key))

    def claim(self, ident: str, span: tuple[int, int]) -> None:
        self.wraps.append((ident, *span))
        self.pos = span[1]

    def ids(self) -> set[str]:
        return {el.get("id") for el in self.tree.getroot().iter() if isinstance(el.tag, str) and el.get("id")}

    def apply(self) -> int:
        """Wrap every claimed sentence; returns the number of elements added."""
        pieces: list[tuple[int, int, int, str, bool]] = []  # (run, start, end, id, first)
        for ident, a, b in self.wraps:
            first_run, first_off = self.where[a]
            last_run, last_off = self.where[b - 1]
            # The sentence's own punctuation joins it: an opening quote before, the stop after.
            head = getattr(*self.runs[first_run]) or ""
            back = first_off
            while back > 0 and _attached(head[back - 1]):
                back -= 1
            if back == 0 or head[back - 1].isspace():  # never into the previous sentence's own stop
                first_off = back
            tail = getattr(*self.runs[last_run]) or ""
            limit = self.where[b] if b < len(self.where) else (len(self.runs), 0)
            while last_off + 1 < len(tail) and _attached(tail[last_off + 1]) and (last_run, last_off + 1) < limit:
                last_off += 1
            for run in range(first_run, last_run + 1):
                el, attr = self.runs[run]
                text = getattr(el, attr) or ""
                start = first_off if run == first_run else 0
                end = last_off + 1 if run == last_run else len(text)
                if run != first_run and not text[start:end].strip():
                    continue
                pieces.append((run, start, end, ident, run == first_run))
        # Last piece first: wrapping a piece moves only what follows it in its text run.
        for run, start, end, ident, first in sorted(pieces, key=lambda p: (p[0], p[1]), reverse=True):
            self._wrap(run, start, end, ident, first)
        return len(pieces)

    def _wrap(self, run: int, start: int, end: int, ident: str, first: bool) -> None:
        el, attr = self.runs[run]
        text = getattr(el, attr) or ""
        span = etree.Element(f"{{{XHTML}}}span")
        if first:
            span.set("id", ident)
        else:
            span.set("data-bookcast-sentence", ident)
        span.text, span.tail = text[start:end], text[end:] or None
        setattr(el, attr, text[:start] or None)
        if attr == "text":
            el.insert(0, span)
        else:
            parent = el.getparent()
            parent.insert(parent.index(el) + 1, span)

    def serialize(self) -> bytes:
        docinfo = self.tree.docinfo
        return etree.tostring(self.tree, xml_declaration=True, encoding=docinfo.encoding or "utf-8",
                              doctype=docinfo.doctype or None)


def _attached(c: str) -> bool:
    """Punctuation that belongs to the word beside it (not a space, not a letter or digit)."""
    return not c.isspace() and not c.isalnum()


def _runs(el: etree._Element) -> Iterator[tuple[etree._Element, str]]:
    """Text runs of `el`'s content in document order: its text, then each child's content and tail."""
    if not isinstance(el.tag, str) or _local(el.tag) in _OPAQUE:
        return
    yield el, "text"
    for child in el:
        yield from _runs(child)
        yield child, "tail"


def match_sentences(docs: Sequence[Doc], start_doc: int, texts: Sequence[str], prefix: str,
                    taken: set[str]) -> list[tuple[int, str] | None]:
    """Claim each of `texts` (a chapter's sentences, in order) in `docs` from `start_doc` on;
    returns per sentence (doc index, id) or None where the book does not contain it. A sentence is
    looked for in the current document, then in the following ones (a chapter can span files)."""
    out: list[tuple[int, str] | None] = []
    current = start_doc
    for n, text in enumerate(texts):
        found = None
        short = len(key_of(text)) < 20  # a short sentence ("Yes.") must be found near where we are
        for d in range(current, len(docs)):
            span = docs[d].find(text, limit=3000 if short or d != current else None)
            if span is not None:
                found = (d, span)
                break
        if found is None:
            out.append(None)
            continue
        d, span = found
        ident = f"{prefix}{n + 1}"
        while ident in taken:
            ident += "_"
        taken.add(ident)
        docs[d].claim(ident, span)
        current = d
        out.append((d, ident))
    return out
