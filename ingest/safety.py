"""Checks run on an archive BEFORE any parser sees it, so hostile files fail fast and cheaply.

EPUBs come from anywhere: a zip bomb, an XML entity bomb, a DRM-encrypted book or a member path that
climbs out of the archive must be refused with one clear line, not exhaust memory or crash a run.
ebooklib parses the container, the package document (OPF), the NCX and the nav with its own lxml
parser; this module parses each of those first through `safe_xml` and refuses entity declarations in
every member a parser will read, so nothing ebooklib sees can expand or fetch anything.
"""
from __future__ import annotations

import posixpath
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from ingest.errors import InputError, UnsupportedError


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what an EPUB may decompress to; generous for real books (a 1,000-page book with
    images is ~50 MB), fatal for bombs."""

    max_total_bytes: int = 1 << 30
    max_member_bytes: int = 256 << 20
    max_ratio: float = 200.0  # uncompressed / compressed for any member over 1 MiB
    max_members: int = 20_000
    max_spine: int = 10_000  # documents in reading order (the chapter limit is ingest.reader.MAX_CHAPTERS)


# `<!ENTITY` in every encoding an XML parser detects on its own (UTF-8/ASCII, UTF-16, UTF-32).
_ENTITY_DECLS = tuple("<!ENTITY".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le",
                                                         "utf-32-be"))
# Manifest media types that no parser reads as XML (an SVG is only copied, never parsed).
_NOT_PARSED = ("image/", "audio/", "video/", "font/", "application/font", "application/x-font",
               "application/vnd.ms-opentype", "application/vnd.adobe", "text/css", "application/pdf")
_XML_SUFFIXES = (".xml", ".opf", ".ncx", ".xhtml", ".html", ".htm", ".smil")
_CHUNK = 1 << 20
# Font obfuscation (IDPF / Adobe) also lists fonts in encryption.xml; it is not DRM.
_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")


def check_epub_archive(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> list[str]:
    """Refuse anything that is not a safe, readable, DRM-free EPUB zip; returns notices about what
    readers will leave out (symbolic-link members), for the user.

    Raises InputError (missing, not a zip, truncated, corrupt, bomb, entity declarations, paths out of
    the book, missing package document) or UnsupportedError (DRM, password-protected members).
    """
    path = Path(path)
    _check_file(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_sizes(path, infos, limits)
            names = _check_names(path, infos)
            if "META-INF/container.xml" not in names:
                raise InputError("not an EPUB (META-INF/container.xml missing)", path)
            parsed = _package_members(zf, names, path, limits)
            if "META-INF/encryption.xml" in names and _has_encrypted_content(zf, path):
                raise UnsupportedError("is DRM-protected (META-INF/encryption.xml); remove DRM first", path)
            notices = _symlinks(zf, infos, parsed, path)
            for info in infos:  # reading every member to its end checks its CRC
                if info.filename in parsed:
                    _member_xml(zf, info.filename, path)  # what ebooklib or we will parse, parsed first
                else:
                    _read_member(zf, info)
        return notices
    except zipfile.BadZipFile as exc:
        raise InputError(f"not a readable EPUB (corrupt zip: {exc})", path) from exc
    except (zlib.error, EOFError, NotImplementedError) as exc:
        raise InputError(f"not a readable EPUB (corrupt or truncated zip: {exc})", path) from exc
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", path) from exc


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected an .epub file", path)
    if not path.is_file():
        raise InputError("is not a regular file", path)
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", path) from exc
    if not zipfile.is_zipfile(path):
        if head == b"PK\x03\x04":
            raise InputError("truncated or damaged EPUB (the zip directory at the end of the file is missing)",
                             path)
        raise InputError("not an EPUB (not a zip archive)", path)


def _check_sizes(path: Path, infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(infos) > limits.max_members:
        raise InputError(f"archive has {len(infos)} members (limit {limits.max_members})", path)
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > limits.max_member_bytes:
            raise InputError(f"archive member {info.filename!r} decompresses to {info.file_size} bytes "
                             f"(limit {limits.max_member_bytes}; zip bomb?)", path)
        if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise InputError(f"archive member {info.filename!r} has compression ratio "
                             f"{info.file_size / max(info.compress_size, 1):.0f}:1 (zip bomb?)", path)
    if total > limits.max_total_bytes:
        raise InputError(f"archive decompresses to {total} bytes (limit {limits.max_total_bytes}; zip bomb?)",
                         path)


def _outside(name: str) -> bool:
    """True for a member path that would leave the archive root if extracted."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return True
    return posixpath.normpath(name).split("/")[0] == ".."


def _check_names(path: Path, infos: list[zipfile.ZipInfo]) -> set[str]:
    """Member names, after refusing paths out of the archive, encrypted members and duplicate names
    (two members with one name show different books to different readers)."""
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise InputError(f"archive has two members named {info.filename!r}", path)
        seen.add(info.filename)
        if _outside(info.filename):
            raise InputError(f"archive member {info.filename!r} points outside the book", path)
        if info.flag_bits & 0x1:
            raise UnsupportedError(f"archive member {info.filename!r} is password-protected (encrypted zip)",
                                   path)
    return seen


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and (info.external_attr >> 16) & 0o170000 == 0o120000


def _symlinks(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], parsed: set[str], path: Path) -> list[str]:
    """Notices for symbolic-link members (zip stores the target path as the member's content; no
    reader here follows it). One that a parser would read as a document is refused."""
    notices = []
    for info in infos:
        if not _is_symlink(info):
            continue
        target = zf.read(info)[:200].decode("utf-8", "replace") if info.file_size < 4096 else "?"
        if info.filename in parsed:
            raise InputError(f"archive member {info.filename!r} is a symbolic link (to {target!r}), "
                             f"not a document", path)
        notices.append(f"archive member {info.filename!r} is a symbolic link (to {target!r}); ignored")
    return notices


def _declares_entities(data: bytes) -> bool:
    return any(pattern in data for pattern in _ENTITY_DECLS)


def _member_xml(zf: zipfile.ZipFile, name: str, path: Path) -> etree._Element:
    data = zf.read(name)
    if _declares_entities(data):
        raise InputError(f"{name} declares XML entities (refused: entity bombs)", path)
    return safe_xml(data, path, name)


def _package_members(zf: zipfile.ZipFile, names: set[str], path: Path, limits: ArchiveLimits) -> set[str]:
    """Members some parser will read as XML: container, package document, every manifest item that
    is not plain media, the NCX, and anything named like XML. Checks the manifest stays inside."""
    container = _member_xml(zf, "META-INF/container.xml", path)
    opfs = [r.get("full-path") or "" for r in container.iter("{*}rootfile")
            if r.get("media-type") == "application/oebps-package+xml"]
    if not opfs:
        raise InputError("META-INF/container.xml names no package document (.opf)", path)
    opf = posixpath.normpath(opfs[-1])  # ebooklib uses the last one
    if _outside(opf):
        raise InputError(f"package document {opfs[-1]!r} points outside the book", path)
    if opf not in names:
        raise InputError(f"package document {opf!r} (named in META-INF/container.xml) is missing", path)
    package = _member_xml(zf, opf, path)
    manifest = next(package.iter("{*}manifest"), None)
    if manifest is None:
        raise InputError(f"{opf} has no <manifest>", path)
    spine = next(package.iter("{*}spine"), None)
    if spine is None:
        raise InputError(f"{opf} has no <spine> (the book's reading order)", path)
    documents = sum(1 for _ in spine.iter("{*}itemref"))
    if documents > limits.max_spine:
        raise InputError(f"{opf}: the spine lists {documents:,} documents (limit {limits.max_spine:,})", path)
    toc_id = spine.get("toc")
    _check_spine_toc(manifest, toc_id, opf, path)
    base = posixpath.dirname(opf)
    parsed = {"META-INF/container.xml", opf} | {n for n in names if n.lower().endswith(_XML_SUFFIXES)}
    for item in manifest.iter("{*}item"):
        href = item.get("href")
        if not href:
            raise InputError(f"{opf}: manifest item {item.get('id')!r} has no href", path)
        target = posixpath.normpath(posixpath.join(base, unquote(href)))
        if ":" in href.split("/")[0] or _outside(target):
            raise InputError(f"{opf}: manifest item {href!r} points outside the book", path)
        if target not in names and posixpath.normpath(posixpath.join(base, href)) not in names:
            raise InputError(f"{opf}: manifest item {href!r} is missing from the archive", path)
        if not (item.get("media-type") or "").startswith(_NOT_PARSED) or item.get("id") == toc_id:
            parsed.add(target)
    return parsed


def _check_spine_toc(manifest: etree._Element, toc_id: str | None, opf: str, path: Path) -> None:
    """The spine's `toc` attribute, when present, names the NCX (ebooklib reads it as one)."""
    if not toc_id:
        return
    item = next((i for i in manifest.iter("{*}item") if i.get("id") == toc_id), None)
    if item is None:
        raise InputError(f"{opf}: the spine's table of contents (toc={toc_id!r}) is not in the manifest", path)
    if item.get("media-type") != "application/x-dtbncx+xml":
        raise InputError(f"{opf}: the spine's table of contents (toc={toc_id!r}) is {item.get('media-type')!r}, "
                         f"not an NCX document", path)


def _has_encrypted_content(zf: zipfile.ZipFile, path: Path) -> bool:
    """True when encryption.xml lists a cipher other than font obfuscation."""
    root = _member_xml(zf, "META-INF/encryption.xml", path)
    return any(m.get("Algorithm", "") not in _OBFUSCATION for m in root.iter("{*}EncryptionMethod"))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Decompress one member to its end, in chunks: zipfile checks the CRC there."""
    with zf.open(info) as fh:
        while fh.read(_CHUNK):
            pass


def _parser() -> etree.XMLParser:
    """A fresh parser per document: its error log is then this document's alone (parsers are not
    shared between threads)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           recover=True)


def safe_xml(data: bytes, path: str | Path | None = None, member: str = "") -> etree._Element:
    """Parse XML/XHTML with entity expansion, DTD loading and network access disabled.

    Malformed markup is recovered (books are often sloppy), but not markup that trips the parser's
    resource limits (nesting deeper than 256 elements): recovering there silently drops text.
    Raises InputError naming `path` (and the archive `member`) when nothing parseable is left, the
    document declares entities, or a limit was hit.
    """
    where = f"{member}: " if member else ""
    parser = _parser()
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise InputError(f"{where}unreadable XML ({exc})", path) from exc
    if root is None:
        raise InputError(f"{where}empty or unreadable XML", path)
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise InputError(f"{where}declares XML entities (refused: entity bombs)", path)
    limit = next((e for e in parser.error_log if e.type_name == "ERR_RESOURCE_LIMIT"), None)
    if limit is not None:
        raise InputError(f"{where}XML too deeply nested or too large (line {limit.line}: {limit.message.strip()})",
                         path)
    return root
