"""XHTML content documents into blocks, in document order, with anchor markers.

Only what a narrator would read becomes text: footnote bodies, note references, scripts, ruby
annotations and navigation are dropped; headings, paragraphs, list items and quotes become blocks;
`<hr>` becomes a section break. Code listings, tables, equations, figures and poem line numbers
are read, skipped or replaced by a spoken note as the project's `Reading` says, and each is
recorded as a `Skip`. Lines of verse (a `linegroup`/`stanza` container, or a paragraph of
`<br/>`-separated lines) become "line" blocks. Anchor markers let the EPUB reader split one file
into several chapters when the table of contents points at ids inside it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html.entities import html5

from lxml import etree

from ingest.foreign import code_of, mark
from ingest.model import Block, Skip, is_scene_break, skip_of
from ingest.pronounce import is_word
from ingest.reading import DEFAULT, Reading, note_text

_EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_SSML_PH = "{http://www.w3.org/2001/10/synthesis}ph"
_SSML_ALPHABET = "{http://www.w3.org/2001/10/synthesis}alphabet"
_SKIP_TAGS = {"script", "style", "head", "rt", "rp", "nav", "svg", "img", "audio",
              "video", "object", "iframe", "button", "form", "input", "select", "textarea", "template"}
_SKIP_TYPES = {"footnote", "endnote", "footnotes", "endnotes", "rearnote", "rearnotes", "noteref",
               "pagebreak", "toc", "landmarks", "page-list", "annotation"}
_BLOCK_TAGS = {"p", "div", "li", "blockquote", "dd", "dt", "td", "th", "pre", "section", "article",
               "aside", "caption", "figcaption", "header", "footer", "main", "body", "ul", "ol", "dl",
               "table", "tr", "tbody", "thead", "center", "address", "h1", "h2", "h3", "h4", "h5", "h6"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_WS = re.compile(r"\s+")
_LINE_NUMBER = re.compile(r"\b(lnum|linenum|line-?num(ber)?|lineno|line_number)\b", re.I)
_VERSE = re.compile(r"\b(linegroup|line-group|stanza|verse|poem|lg)\b", re.I)
_CODE = re.compile(r"\b(code|listing|programlisting|sourcecode|source-code|highlight)\b", re.I)
_RECORDED_TYPES = {"footnote": "footnote", "endnote": "footnote", "footnotes": "footnote", "endnotes": "footnote",
                   "rearnote": "footnote", "rearnotes": "footnote", "pagebreak": "page-number"}


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


def _types(el: etree._Element) -> set[str]:
    """The element's epub:type values and ARIA roles (doc-footnote → footnote)."""
    return set((el.get(_EPUB_TYPE) or "").split()) | set((el.get("role") or "").replace("doc-", "").split())


def _skipped(el: etree._Element) -> bool:
    tag = _local(el.tag)
    if tag in _SKIP_TAGS or not isinstance(el.tag, str):
        return True
    if _types(el) & _SKIP_TYPES:
        return True
    # <sup><a href="#fn1">1</a></sup> and <a class="noteref">: reference marks, not text
    if tag == "sup" and len(el) and _local(el[0].tag) == "a" and (el[0].get("href") or "").find("#") >= 0:
        return True
    return tag == "a" and _note_mark(el)


# Project Gutenberg's notes carry no epub:type: <a id="FNanchor_1_1" href="#Footnote_1_1"
# class="fnanchor">[1]</a> in the text, <div class="footnote"> bodies under a "FOOTNOTES:" heading.
_NOTE_NAME = re.compile(r"foot|fn|note|anchor", re.I)
_NOTE_MARK = re.compile(r"\s*[\[(]?\s*(\d{1,3}|[A-Za-z]|[*†‡§¶]{1,3})\s*[\])]?\s*")
_NOTE_CLASS = re.compile(r"\b(foot-?notes?|end-?notes?)\b", re.I)
_NOTE_LABEL = re.compile(r"^[\[(]\d{1,3}[\])]\.?\s+")  # '[2] ...'; a bare '23.' may be a line number
_NOTES_HEADING = re.compile(r"\s*foot-?notes?\s*[:.]?\s*", re.I)


def _note_mark(el: etree._Element) -> bool:
    """A link that is a note's reference mark: '[1]', '2', '*' pointing at a note in the book."""
    href = el.get("href") or ""
    if "#" not in href or not _NOTE_MARK.fullmatch("".join(el.itertext())):
        return False
    return bool(_NOTE_NAME.search(" ".join((href, el.get("class") or "", el.get("id") or ""))))


_ONE_NOTE = {"footnote", "endnote", "rearnote"}
_NOTE_BLOCK = {"footnotes", "endnotes", "rearnotes"}


def _note(el: etree._Element) -> str | None:
    """'one' for a note's body, 'block' for a block of notes, 'heading' for a 'FOOTNOTES:' heading:
    by epub:type/role, or (Gutenberg) by class; None for anything else."""
    tag = _local(el.tag)
    if tag in _HEADINGS:
        return "heading" if _NOTES_HEADING.fullmatch("".join(el.itertext())) else None
    types = _types(el)
    if types & _ONE_NOTE:
        return "one"
    if types & _NOTE_BLOCK:
        return "block"
    found = _NOTE_CLASS.search(_classes(el)) if tag in _BLOCK_TAGS else None
    if found is None:
        return None
    return "block" if found.group(1).lower().endswith("s") else "one"


def _classes(el: etree._Element) -> str:
    return el.get("class") or ""


def _kind(el: etree._Element) -> str | None:
    """What a non-prose element is (code, table, math, figure, line-number), or None."""
    tag = _local(el.tag)
    if tag == "pre" or (tag in _BLOCK_TAGS and _CODE.search(_classes(el))):
        return "code"
    if tag == "table":
        return "table"
    if tag == "math":
        return "math"
    if tag == "figure":
        inner = {_local(e.tag) for e in el.iter() if isinstance(e.tag, str)}
        return "table" if "table" in inner else "code" if "pre" in inner else "figure"
    if _LINE_NUMBER.search(_classes(el)):
        return "line-number"
    return None


_ACTION = {"code": "code", "table": "tables", "math": "math", "figure": "figures", "line-number": "line_numbers"}


class _Walker:
    def __init__(self, anchor_ids: set[str], reading: Reading = DEFAULT, language: str = "en") -> None:
        self.anchor_ids = anchor_ids
        self.reading, self.language = reading, language
        self.out: list[Block | Anchor | Skip] = []  # Skips in place, so a split file's chapters get their own
        self.buf: list[str] = []
        self.heading = False
        self.verse = 0  # depth of verse containers we are inside
        self.foreign: str | None = None  # the language (not en/zh) of the element we are in
        self.pronunciations: dict[str, str] = {}  # ssml:ph on single words: word → IPA
        self.in_notes = 0  # depth of notes being read ([reading] footnotes = "read")

    def text(self, text: str | None) -> None:
        if text:
            self.buf.append(mark(text, self.foreign) if self.foreign else text)

    def flush(self) -> None:
        text = _WS.sub(" ", "".join(self.buf)).strip()
        self.buf = []
        if self.in_notes:
            text = _NOTE_LABEL.sub("", text, count=1)  # a note's own '[2]' is not read
        if text and not self.heading and is_scene_break(text):
            self.out.append(Block("", "section_break"))
        elif text:
            kind = "heading" if self.heading else "line" if self.verse else "paragraph"
            self.out.append(Block(text, kind))

    def _end_stanza(self) -> None:
        """The last line of a stanza pauses like a paragraph."""
        for i in range(len(self.out) - 1, -1, -1):
            block = self.out[i]
            if isinstance(block, Block):
                if block.kind == "line":
                    self.out[i] = Block(block.text, "paragraph", block.pause_s)
                return

    def _not_prose(self, el: etree._Element, kind: str) -> bool:
        """Handle a code listing, table, equation, figure or line number per the policy; False
        when it is to be read as ordinary text."""
        text = _WS.sub(" ", " ".join(el.itertext())).strip()
        if kind == "math":
            alt = (el.get("alttext") or "").strip()
            if alt:  # the book's own words for the equation
                self.buf.append(f" {alt} ")
                return True
            block = el.get("display") == "block"
            action = self.reading.math
            if action == "read":
                action = "note"  # MathML's raw text (mi, mo, mn run together) is not readable
            self.out.append(skip_of(kind, action, text))
            if action == "note":
                if block:
                    self.flush()
                    self.out.append(Block(note_text("math", self.language), "paragraph", note="math"))
                else:
                    self.buf.append(f" {note_text('math-inline', self.language)} ")
            return True
        action = getattr(self.reading, _ACTION[kind])
        if action == "read":
            return False
        self.out.append(skip_of(kind, action, text))
        if action == "note":
            self.flush()
            self.out.append(Block(note_text(kind, self.language), "paragraph", note=kind))
        return True

    def walk(self, el: etree._Element) -> None:
        if isinstance(el, etree._Entity):
            self.text(_entity_text(el.name))
            self.text(el.tail)
            return
        note = _note(el) if isinstance(el.tag, str) else None
        if note and self.reading.footnotes == "read":
            self._read_note(el, note)
            return
        if note or _skipped(el):
            recorded = "footnote" if note else next(
                (_RECORDED_TYPES[t] for t in _types(el) if t in _RECORDED_TYPES), None) \
                if isinstance(el.tag, str) else None
            if recorded:
                text = " ".join(el.itertext()).strip()
                if text:
                    self.out.append(skip_of(recorded, "skip", text))
            self.text(el.tail)
            return
        kind = _kind(el)
        if kind is not None and self._not_prose(el, kind):
            self.text(el.tail)
            return
        self._element(el)

    def _read_note(self, el: etree._Element, note: str) -> None:
        """A note read where the book puts it; one standing alone in the text is announced."""
        if note == "one" and not self.in_notes:
            self.flush()
            self.out.append(Block(note_text("footnote", self.language), "paragraph", note="footnote"))
        self.in_notes += 1
        try:
            self._element(el)
        finally:
            self.in_notes -= 1

    def _element(self, el: etree._Element) -> None:
        tag = _local(el.tag)
        ident = el.get("id")
        is_block = tag in _BLOCK_TAGS
        verse = self.reading.verse and is_block and (
            bool(_VERSE.search(_classes(el))) or sum(1 for c in el if _local(c.tag) == "br") >= 2)
        if is_block or (ident and ident in self.anchor_ids):
            self.flush()
        if ident and ident in self.anchor_ids:
            self.out.append(Anchor(ident))
        if tag == "hr":
            self.flush()
            self.out.append(Block("", "section_break"))
        elif tag == "br":
            if self.verse:
                self.flush()  # a line of verse ends here
            else:
                self.buf.append(" ")
        was_heading, was_foreign = self.heading, self.foreign
        if tag in _HEADINGS:
            self.heading = True
        ph = el.get(_SSML_PH)
        if ph and (el.get(_SSML_ALPHABET) or "ipa").lower() == "ipa":
            words = "".join(el.itertext()).strip()
            if is_word(words):
                self.pronunciations[words] = ph
        lang = el.get(_XML_LANG) or el.get("lang")
        if lang is not None:
            self.foreign = code_of(lang)  # en/zh (None) inside a foreign passage ends it
        if verse:
            self.verse += 1
        self.text(el.text)
        for child in el:
            self.walk(child)
        if is_block:
            self.flush()
        if verse:
            self.verse -= 1
            self._end_stanza()
        self.heading, self.foreign = was_heading, was_foreign
        self.text(el.tail)


def extract_blocks(root: etree._Element, anchor_ids: set[str] = frozenset(), reading: Reading = DEFAULT,
                   language: str = "en", pronunciations: dict[str, str] | None = None) -> list[Block | Anchor | Skip]:
    """Blocks of the document's <body> (or root) in order, with Anchor markers for ids in
    `anchor_ids` and a Skip where something is not read as written (see `Reading`); ssml:ph
    pronunciations of single words are added to `pronunciations`."""
    body = next((e for e in root.iter() if _local(e.tag) == "body"), root)
    walker = _Walker(set(anchor_ids), reading, language)
    walker.walk(body)
    walker.flush()
    if pronunciations is not None:
        pronunciations.update(walker.pronunciations)
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
