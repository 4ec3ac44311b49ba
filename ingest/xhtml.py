"""XHTML content documents into blocks, in document order, with anchor markers.

Only what a narrator would read becomes text: footnote bodies, note references, scripts, ruby
annotations and navigation are dropped; headings, paragraphs, list items and quotes become blocks;
`<hr>` becomes a section break. Anchor markers let the EPUB reader split one file into several
chapters when the table of contents points at ids inside it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html.entities import html5

from lxml import etree

from ingest.model import Block

_EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
_SKIP_TAGS = {"script", "style", "head", "rt", "rp", "nav", "svg", "math", "img", "figure", "audio",
              "video", "object", "iframe", "button", "form", "input", "select", "textarea", "template"}
_SKIP_TYPES = {"footnote", "endnote", "footnotes", "endnotes", "rearnote", "rearnotes", "noteref",
               "pagebreak", "toc", "landmarks", "page-list", "annotation"}
_BLOCK_TAGS = {"p", "div", "li", "blockquote", "dd", "dt", "td", "th", "pre", "section", "article",
               "aside", "caption", "figcaption", "header", "footer", "main", "body", "ul", "ol", "dl",
               "table", "tr", "tbody", "thead", "center", "address", "h1", "h2", "h3", "h4", "h5", "h6"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Anchor:
    """Marks where an element with `id` starts in the block stream."""

    id: str


def _entity_text(name: str) -> str:
    """The character an HTML named entity stands for (`&rsquo;` → ’, `&nbsp;` → no-break space).

    DTDs are never loaded (see ingest.safety), so entities an XHTML 1.1 book takes from its DTD
    reach us unexpanded; they are single characters, so mapping them is safe. Anything else becomes a
    space: never the literal `&name;`, and never glued words."""
    return html5.get(f"{name};", " ")


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _skipped(el: etree._Element) -> bool:
    tag = _local(el.tag)
    if tag in _SKIP_TAGS or not isinstance(el.tag, str):
        return True
    types = set((el.get(_EPUB_TYPE) or "").split()) | set((el.get("role") or "").replace("doc-", "").split())
    if types & _SKIP_TYPES:
        return True
    # <sup><a href="#fn1">1</a></sup> and <a class="noteref">: reference marks, not text
    if tag == "sup" and len(el) and _local(el[0].tag) == "a" and (el[0].get("href") or "").find("#") >= 0:
        return True
    return False


class _Walker:
    def __init__(self, anchor_ids: set[str]) -> None:
        self.anchor_ids = anchor_ids
        self.out: list[Block | Anchor] = []
        self.buf: list[str] = []
        self.heading = False

    def flush(self) -> None:
        text = _WS.sub(" ", "".join(self.buf)).strip()
        self.buf = []
        if text:
            self.out.append(Block(text, "heading" if self.heading else "paragraph"))

    def walk(self, el: etree._Element) -> None:
        if isinstance(el, etree._Entity):
            self.buf.append(_entity_text(el.name))
            if el.tail:
                self.buf.append(el.tail)
            return
        if _skipped(el):
            if el.tail:
                self.buf.append(el.tail)
            return
        tag = _local(el.tag)
        ident = el.get("id")
        is_block = tag in _BLOCK_TAGS
        if is_block or (ident and ident in self.anchor_ids):
            self.flush()
        if ident and ident in self.anchor_ids:
            self.out.append(Anchor(ident))
        if tag == "hr":
            self.flush()
            self.out.append(Block("", "section_break"))
        elif tag == "br":
            self.buf.append(" ")
        was_heading = self.heading
        if tag in _HEADINGS:
            self.heading = True
        if el.text:
            self.buf.append(el.text)
        for child in el:
            self.walk(child)
        if is_block:
            self.flush()
        self.heading = was_heading
        if el.tail:
            self.buf.append(el.tail)


def extract_blocks(root: etree._Element, anchor_ids: set[str] = frozenset()) -> list[Block | Anchor]:
    """Blocks of the document's <body> (or root), with Anchor markers for ids in `anchor_ids`."""
    body = next((e for e in root.iter() if _local(e.tag) == "body"), root)
    walker = _Walker(set(anchor_ids))
    walker.walk(body)
    walker.flush()
    return walker.out


def body_types(root: etree._Element) -> set[str]:
    """epub:type values on <body> and its first sectioning element (cover, toc, copyright-page ...)."""
    types: set[str] = set()
    for el in root.iter():
        tag = _local(el.tag)
        if tag in {"body", "section", "div", "nav"}:
            types |= set((el.get(_EPUB_TYPE) or "").split())
            if tag != "body":
                break
    return types
