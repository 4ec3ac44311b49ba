"""EPUB 2/3 into the document model.

Reading order is the spine. Chapter titles come from the EPUB3 nav (or the NCX when there is no
nav). When several TOC entries point into one file, that file is split at their anchors. Documents
a listener should not hear (cover, nav/TOC, copyright page) are skipped; a spine document with no TOC
entry continues the previous chapter, since publishers often split one chapter across files.
"""
from __future__ import annotations

import logging
import posixpath
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ingest.errors import InputError
from ingest.images import usable_cover
from ingest.model import Block, Book, BookMeta, Chapter
from ingest.safety import check_epub_archive, safe_xml
from ingest.xhtml import Anchor, body_types, extract_blocks

log = logging.getLogger(__name__)

_SKIP_TYPES = {"cover", "toc", "copyright-page", "titlepage", "halftitlepage", "landmarks",
               "loi", "lot", "index", "colophon", "imprint", "page-list"}
_SKIP_NAMES = ("cover", "toc", "nav", "copyright", "titlepage", "title-page", "halftitle", "colophon")
_SKIP_TITLES = {"contents", "table of contents", "copyright", "cover", "目录", "目錄", "版权", "版權",
                "版权信息", "封面", "title page"}


@dataclass(frozen=True)
class TocEntry:
    file: str  # path relative to the OPF directory
    fragment: str
    title: str


def read_epub(path: str | Path) -> Book:
    """Read an EPUB file. Raises InputError / UnsupportedError with the file named."""
    path = Path(path)
    notices = check_epub_archive(path)
    try:
        from ebooklib import epub

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = epub.read_epub(str(path), options={"ignore_ncx": False})
    except KeyError as exc:
        raise InputError(f"EPUB references a missing file {exc}", path) from exc
    except Exception as exc:  # ebooklib raises bare Exceptions, lxml and Python errors for broken packages
        log.debug("ebooklib could not read %s", path, exc_info=True)
        raise InputError(f"not a readable EPUB (its package document or table of contents is malformed: "
                         f"{_plain(exc)})", path) from exc

    meta, cover_notice = _metadata(book)
    toc = _toc(book, path)
    chapters = _chapters(book, toc, path)
    if not chapters:
        raise InputError("EPUB contains no readable text (empty pages, or only images)", path)
    notices = [*notices, *([cover_notice] if cover_notice else [])]
    return Book(meta=meta, chapters=tuple(chapters), source=str(path), notices=tuple(notices))


def _plain(exc: Exception) -> str:
    """An exception's own words without its class name; library internals ('NoneType' object is
    not iterable) become a plain statement."""
    text = " ".join(str(exc).split())
    internal = isinstance(exc, (TypeError, AttributeError, IndexError, ValueError)) or "object" in text
    return "the library reading it failed" if internal or not text else text[:200]


def _first(book, name: str) -> str:
    values = book.get_metadata("DC", name)
    return str(values[0][0]).strip() if values and values[0][0] else ""


def _metadata(book) -> tuple[BookMeta, str | None]:
    """The book's metadata, and a notice when its cover had to be left out."""
    cover, mime, notice = usable_cover(_cover(book), "the cover image")
    language = (_first(book, "language") or "en").lower()
    return BookMeta(
        title=_first(book, "title") or "Untitled",
        author=", ".join(str(v[0]).strip() for v in book.get_metadata("DC", "creator") if v[0]),
        language="zh" if language.startswith("zh") else language.split("-")[0],
        year=_first(book, "date")[:4],
        description=_first(book, "description"),
        cover=cover,
        cover_mime=mime,
    ), notice


def _cover(book) -> bytes | None:
    """The cover image's bytes (its type is judged from them: `usable_cover`)."""
    import ebooklib

    for item in book.get_items_of_type(ebooklib.ITEM_COVER):
        if getattr(item, "media_type", "").startswith("image/"):
            return item.get_content()
    # EPUB2: <meta name="cover" content="item-id"/>
    for value, attrs in book.get_metadata("OPF", "cover") or []:
        item = book.get_item_with_id((attrs or {}).get("content", ""))
        if item is not None and getattr(item, "media_type", "").startswith("image/"):
            return item.get_content()
    for item in book.get_items_of_type(ebooklib.ITEM_IMAGE):
        if "cover" in item.get_name().lower():
            return item.get_content()
    return None


def _toc(book, path: Path) -> list[TocEntry]:
    """TOC entries in order, from the EPUB3 nav if present, else the NCX."""
    import ebooklib
    from ebooklib import epub

    nav = next((i for i in book.get_items() if isinstance(i, epub.EpubNav)), None)
    if nav is not None:
        entries = _nav_entries(nav.get_content(), nav.get_name(), path)
        if entries:
            return entries
    for item in book.get_items_of_type(ebooklib.ITEM_NAVIGATION):
        entries = _ncx_entries(item.get_content(), item.get_name(), path)
        if entries:
            return entries
    log.info("%s: no table of contents; using spine documents as chapters", path)
    return []


def _split_href(href: str, doc: str, path: Path) -> tuple[str, str]:
    """(file relative to the OPF folder, fragment) of a TOC link in `doc`. Raises InputError for a
    link that leaves the book (`../../etc/passwd`, `/abs`, `http://...`): it is never followed."""
    file, _, fragment = unquote(href).partition("#")
    if not file:
        return "", fragment
    target = posixpath.normpath(posixpath.join(posixpath.dirname(doc), file))
    if ":" in file.split("/")[0] or file.startswith("/") or target.split("/")[0] == "..":
        raise InputError(f"table of contents entry {href!r} in {doc} points outside the book", path)
    return target, fragment


def _nav_entries(data: bytes, doc: str, path: Path) -> list[TocEntry]:
    root = safe_xml(data, path, doc)
    navs = [n for n in root.iter("{*}nav")]
    toc = next((n for n in navs if "toc" in (n.get("{http://www.idpf.org/2007/ops}type") or "")), None)
    out = []
    for a in (toc if toc is not None else root).iter("{*}a"):
        href = a.get("href")
        title = " ".join("".join(a.itertext()).split())
        if href and title:
            file, frag = _split_href(href, doc, path)
            out.append(TocEntry(file, frag, title))
    return out


def _ncx_entries(data: bytes, doc: str, path: Path) -> list[TocEntry]:
    root = safe_xml(data, path, doc)
    out = []
    for point in root.iter("{*}navPoint"):
        label = next(point.iter("{*}text"), None)
        content = next((c for c in point if c.tag.endswith("content")), None)
        if label is not None and content is not None and content.get("src"):
            file, frag = _split_href(content.get("src"), doc, path)
            out.append(TocEntry(file, frag, " ".join((label.text or "").split())))
    return out


def _skip_document(name: str, types: set[str], toc_titles: list[str]) -> bool:
    stem = posixpath.basename(name).lower()
    if types & _SKIP_TYPES:
        return True
    if any(t.strip().lower() in _SKIP_TITLES for t in toc_titles):
        return True
    return not toc_titles and any(stem.startswith(p) for p in _SKIP_NAMES)


def _chapters(book, toc: list[TocEntry], path: Path) -> list[Chapter]:
    by_file: dict[str, list[TocEntry]] = {}
    for entry in toc:
        by_file.setdefault(entry.file, []).append(entry)
    spine_files = set()
    chapters: list[tuple[str, list[Block], str]] = []
    items = {item.get_id(): item for item in book.get_items()}  # ebooklib's lookup scans every item
    for idref, linear in book.spine:
        item = items.get(idref)
        if item is None:
            raise InputError(f"spine references missing item {idref!r}", path)
        if "xhtml" not in (item.media_type or "") and "html" not in (item.media_type or ""):
            continue
        name = posixpath.normpath(item.get_name())
        spine_files.add(name)
        entries = by_file.get(name, [])
        root = safe_xml(item.get_content(), path, name)
        if _skip_document(name, body_types(root), [e.title for e in entries]):
            log.debug("%s: skipping %s (front/back matter)", path, name)
            continue
        anchors = {e.fragment for e in entries if e.fragment}
        stream = extract_blocks(root, anchors)
        _distribute(stream, entries, name, chapters)
    missing = [f for f in by_file if f and f not in spine_files and not book.get_item_with_href(f)]
    if missing:
        raise InputError(f"table of contents points to missing file {missing[0]!r}", path)
    return [Chapter(title, tuple(blocks), src) for title, blocks, src in chapters
            if any(b.text for b in blocks)]


def _distribute(stream: list, entries: list[TocEntry], name: str, chapters: list) -> None:
    """Append one document's blocks to `chapters`, starting a new chapter at the file's own TOC
    entry and at each anchor a TOC entry points to. Text with no entry continues the previous
    chapter; chapters left empty are dropped by the caller."""
    by_anchor = {e.fragment: e for e in entries if e.fragment}
    file_entry = next((e for e in entries if not e.fragment), None)
    if file_entry is not None:
        chapters.append((file_entry.title, [], name))
    for piece in stream:
        if isinstance(piece, Anchor):
            entry = by_anchor.get(piece.id)
            if entry is not None:
                chapters.append((entry.title, [], f"{name}#{piece.id}"))
            continue
        if not chapters:
            title = piece.text if piece.kind == "heading" else posixpath.basename(name)
            chapters.append((title, [], name))
        chapters[-1][1].append(piece)
