"""Passages in other languages (a Latin epigraph, German lines in a poem, a Greek word): marked in
the text where the book says so (`xml:lang`/`lang` on an element) or where the script shows it
(Greek words), so the front end can give them their own language run.

Each word is wrapped on its own — OPEN + code + SEP + word + CLOSE, private-use characters no book
text contains — so cutting text into sentences can never separate a mark from its word. Engines
that have voices for such languages (espeak) read them in their language; the others read
Latin-script passages in the book voice and say so in preview.
"""
from __future__ import annotations

import re

OPEN, SEP, CLOSE = "\ue000", "\ue001", "\ue002"
MARKS = OPEN + SEP + CLOSE
_WORD = re.compile(r"[^\W\d_]+")
TAGGED = re.compile(OPEN + r"([a-z]{2,3}(?:-[a-z0-9]{1,8})*)" + SEP + r"([^" + CLOSE + r"]*)" + CLOSE)
_GREEK_WORD = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]{2,}")
_NATIVE = {"en", "zh", "cmn"}  # languages the front end already tells apart by script


def code_of(attribute: str) -> str | None:
    """The language an xml:lang/lang attribute asks for, when it is one to mark (not en or zh)."""
    code = (attribute or "").strip().lower()
    if not re.fullmatch(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*", code):
        return None
    return None if code.split("-")[0] in _NATIVE else code


def mark(text: str, code: str) -> str:
    """Every word of `text` marked as being in `code`."""
    return _WORD.sub(lambda m: f"{OPEN}{code}{SEP}{m.group(0)}{CLOSE}", text)


def mark_greek(text: str) -> str:
    """Greek words (two or more Greek letters) marked as Greek; single letters stay symbols (π)."""
    if not any("\u0370" <= c <= "\u03ff" or "\u1f00" <= c <= "\u1fff" for c in text):
        return text
    out, at = [], 0
    for m in _GREEK_WORD.finditer(text):
        if text.rfind(OPEN, 0, m.start()) > text.rfind(CLOSE, 0, m.start()):
            continue  # already inside a mark (xml:lang="grc")
        out.append(text[at:m.start()] + mark(m.group(0), "el"))
        at = m.end()
    return "".join(out) + text[at:]


def unmark(text: str) -> str:
    """The text without marks (what the source said)."""
    return TAGGED.sub(lambda m: m.group(2), text) if OPEN in text else text


def languages(text: str) -> set[str]:
    return {m.group(1) for m in TAGGED.finditer(text)}
