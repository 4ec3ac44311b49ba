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
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from ingest.errors import InputError
from ingest.images import usable_cover
from ingest.model import Block, Book, BookMeta, Chapter, Skip, skip_of
from ingest.pronounce import read_pls
from ingest.reading import DEFAULT, Reading, is_back_matter, looks_like_legal_text
from ingest.safety import check_epub_archive, safe_xml
from ingest.structure import detect_language, fold_toc, merge_heading_only, numbered_title
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
    depth: int = 1  # 1 = top level of the table of contents


def read_epub(path: str | Path, reading: Reading = DEFAULT) -> Book:
    """Read an EPUB file (`reading`: what to do with code, tables, back matter ... and the TOC
    depth that makes chapters). Raises InputError / UnsupportedError with the file named."""
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
    left_out: list[tuple[str, Skip]] = []
    said = _pls(book, path)
    chapters = _chapters(book, toc, path, reading, meta.language, left_out, said)
    if not chapters:
        raise InputError("EPUB contains no readable text (empty pages, or only images)", path)
    if not _first(book, "language"):  # no dc:language: judge by the text
        found = detect_language("\n".join(b.text for c in chapters[:8] for b in c.blocks))
        if found and found != meta.language:
            meta = replace(meta, language=found)
            notices = [*notices, f"the book does not give its language; read as {found} from its text"]
    notices = [*notices, *([cover_notice] if cover_notice else [])]
    return Book(meta=meta, chapters=tuple(chapters), source=str(path), notices=tuple(notices),
                left_out=tuple(left_out), pronunciations=tuple(sorted(said.items())))


def _pls(book, path: Path) -> dict[str, str]:
    """word → IPA from the package's PLS lexicons (application/pls+xml)."""
    out: dict[str, str] = {}
    for item in book.get_items():
        if (getattr(item, "media_type", "") or "").lower() == "application/pls+xml":
            out.update(read_pls(safe_xml(item.get_content(), path, item.get_name())))
    return out


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
            out.append(TocEntry(file, frag, title, _nav_depth(a)))
    return out


def _nav_depth(a) -> int:
    """1 + the number of enclosing list items that are links themselves: an unlinked grouping item
    (an author's name over their stories) is not a level a chapter can hang from."""
    depth = 1
    li = a.getparent()
    for anc in (li.iterancestors() if li is not None else ()):
        if isinstance(anc.tag, str) and anc.tag.endswith("}li") and any(
                isinstance(c.tag, str) and c.tag.endswith("}a") and c.get("href") for c in anc):
            depth += 1
    return depth


def _ncx_entries(data: bytes, doc: str, path: Path) -> list[TocEntry]:
    root = safe_xml(data, path, doc)
    out = []
    for point in root.iter("{*}navPoint"):
        label = next(point.iter("{*}text"), None)
        content = next((c for c in point if c.tag.endswith("content")), None)
        if label is not None and content is not None and content.get("src"):
            file, frag = _split_href(content.get("src"), doc, path)
            depth = sum(1 for e in point.iterancestors() if isinstance(e.tag, str) and e.tag.endswith("navPoint"))
            out.append(TocEntry(file, frag, " ".join((label.text or "").split()), depth + 1))
    return out


def _skip_document(name: str, types: set[str], toc_titles: list[str]) -> str | None:
    """Why a whole spine document is not read (front matter, a table of contents ...), or None."""
    stem = posixpath.basename(name).lower()
    if types & {"copyright-page", "imprint", "colophon"}:
        return "copyright"
    if types & _SKIP_TYPES:
        return "front-matter" if types & {"cover", "titlepage", "halftitlepage"} else "toc"
    if any(t.strip().lower() in _SKIP_TITLES for t in toc_titles):
        return "front-matter"
    if not toc_titles and any(stem.startswith(p) for p in _SKIP_NAMES):
        return "front-matter"
    return None


def _chapters(book, toc: list[TocEntry], path: Path, reading: Reading = DEFAULT, language: str = "en",
              left_out: list[tuple[str, Skip]] | None = None, said: dict[str, str] | None = None) -> list[Chapter]:
    by_file: dict[str, list[TocEntry]] = {}
    for entry in toc:
        by_file.setdefault(entry.file, []).append(entry)
    spine_files = set()
    chapters: list[tuple[str, list, str, int]] = []
    left_out = left_out if left_out is not None else []
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
        titles = [e.title for e in entries]
        label = titles[0] if titles else posixpath.basename(name)
        text = " ".join(" ".join(root.itertext()).split())
        why = _skip_document(name, body_types(root), titles)
        if why is None and reading.copyright != "read" and looks_like_legal_text(text):
            why = "copyright"
        if why is None and reading.back_matter != "read" and titles and all(is_back_matter(t) for t in titles):
            why = "back-matter"
        if why is not None:
            log.debug("%s: skipping %s (%s)", path, name, why)
            if text:
                left_out.append((label, skip_of(why, "skip", text)))
            continue
        anchors = {e.fragment for e in entries if e.fragment}
        stream = extract_blocks(root, anchors, reading, language, said)
        _distribute(stream, entries, name, chapters)
    missing = [f for f in by_file if f and f not in spine_files and not book.get_item_with_href(f)]
    if missing:
        raise InputError(f"table of contents points to missing file {missing[0]!r}", path)
    built = []
    for title, pieces, src, depth in chapters:
        blocks = tuple(p for p in pieces if isinstance(p, Block))
        skipped = tuple(p for p in pieces if isinstance(p, Skip))
        if any(b.text and not b.note for b in blocks):  # only spoken notes: nothing of the book's own
            built.append((Chapter(title, blocks, src, skipped), depth))
        elif skipped:
            left_out.append((title, Skip("empty-chapter", "skip", sum(s.words for s in skipped),
                                         "only " + ", ".join(sorted({s.what for s in skipped})))))
    folded = [numbered_title(c) for c in merge_heading_only(fold_toc(built, reading.toc_depth))]
    if reading.back_matter != "read":  # a bibliography or notes section inside a document
        for chapter in [c for c in folded if is_back_matter(c.title)]:
            left_out.append((chapter.title, skip_of("back-matter", "skip", chapter.text)))
        folded = [c for c in folded if not is_back_matter(c.title)] or folded
    return folded


def _distribute(stream: list, entries: list[TocEntry], name: str, chapters: list) -> None:
    """Append one document's blocks to `chapters`, starting a new chapter at the file's own TOC
    entry and at each anchor a TOC entry points to. Text with no entry continues the previous
    chapter; chapters left empty are dropped by the caller."""
    by_anchor = {e.fragment: e for e in entries if e.fragment}
    file_entry = next((e for e in entries if not e.fragment), None)
    if file_entry is not None:
        chapters.append((file_entry.title, [], name, file_entry.depth))
    for piece in stream:
        if isinstance(piece, Anchor):
            entry = by_anchor.get(piece.id)
            if entry is not None:
                chapters.append((entry.title, [], f"{name}#{piece.id}", entry.depth))
            continue
        if not chapters:
            title = piece.text if isinstance(piece, Block) and piece.kind == "heading" else posixpath.basename(name)
            chapters.append((title, [], name, 1))
        chapters[-1][1].append(piece)
