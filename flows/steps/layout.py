"""Output layouts: where a book's files go, and what a library server needs beside them.

`audiobookshelf`: `<library>/<Author>/<Title>/` — the folder structure Audiobookshelf scans — with
the chapter files in track order (their names start with the track number), the cover as an image
file, `metadata.json` in Audiobookshelf's own format (title, authors, narrators, language, year,
description, chapters with start/end seconds) and an OPF with the same Dublin Core fields for
players that read those instead.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from xml.sax.saxutils import escape

from ingest.model import Book
from mastering.files import write_bytes_atomic

LAYOUTS = ("flat", "audiobookshelf")
_COVER_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


def folder_name(text: str, fallback: str) -> str:
    """A readable folder name: the text itself minus characters file systems refuse."""
    text = unicodedata.normalize("NFC", text).strip()
    text = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", text)
    text = re.sub(r"\s+", " ", text).strip(" .")[:120]
    return text or fallback


def library_folder(library: Path, book: Book) -> Path:
    """`<library>/<Author>/<Title>/` for the book."""
    return library / folder_name(book.meta.author, "Unknown Author") / folder_name(book.meta.title, book.slug)


def write_audiobookshelf(folder: Path, book: Book, manifest: dict) -> list[Path]:
    """The cover file, metadata.json and metadata.opf beside the delivered chapters; returns them."""
    meta = book.meta
    written = []
    if meta.cover:
        written.append(write_bytes_atomic(folder / ("cover" + _COVER_SUFFIX.get(meta.cover_mime, ".jpg")), meta.cover))
    chapters, start = [], 0.0
    for c in manifest.get("chapters", []):
        if c.get("status") != "ok":
            continue
        for f in c.get("parts") or [{"title": c["title"], "duration_s": c["duration_s"]}]:
            chapters.append({"id": len(chapters), "start": round(start, 3),
                             "end": round(start + f["duration_s"], 3), "title": f["title"]})
            start += f["duration_s"]
    data = {"title": meta.title, "subtitle": None, "authors": [meta.author] if meta.author else [],
            "narrators": [meta.narrator] if meta.narrator else [], "series": [], "genres": ["Audiobook"],
            "publishedYear": meta.year or None, "publisher": None, "description": meta.description or None,
            "isbn": None, "asin": None, "language": meta.language, "explicit": False, "abridged": False,
            "tags": [], "chapters": chapters}
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    written.append(write_bytes_atomic(folder / "metadata.json", text.encode("utf-8")))
    written.append(write_bytes_atomic(folder / "metadata.opf", _opf(book).encode("utf-8")))
    return written


def _opf(book: Book) -> str:
    m = book.meta
    fields = [f"    <dc:title>{escape(m.title)}</dc:title>", f"    <dc:language>{escape(m.language)}</dc:language>"]
    if m.author:
        fields.append(f'    <dc:creator opf:role="aut">{escape(m.author)}</dc:creator>')
    if m.narrator:
        fields.append(f'    <dc:contributor opf:role="nrt">{escape(m.narrator)}</dc:contributor>')
    if m.year:
        fields.append(f"    <dc:date>{escape(m.year)}</dc:date>")
    if m.description:
        fields.append(f"    <dc:description>{escape(m.description)}</dc:description>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<package xmlns="http://www.idpf.org/2007/opf" version="2.0" unique-identifier="id">\n'
            '  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">\n'
            f'    <dc:identifier id="id">bookcast:{escape(book.slug)}</dc:identifier>\n'
            + "\n".join(fields) + "\n  </metadata>\n</package>\n")
