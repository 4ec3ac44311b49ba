"""Checks run on an archive BEFORE any parser sees it, so hostile files fail fast and cheaply.

EPUBs come from anywhere: a zip bomb, an XML entity bomb, a DRM-encrypted book or a member path that
climbs out of the archive must be refused with one clear line, not exhaust memory or crash a run.
"""
from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

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


_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


def check_epub_archive(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """Raise InputError/UnsupportedError if `path` is not a safe, readable, DRM-free EPUB zip."""
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected an .epub file", path)
    if not zipfile.is_zipfile(path):
        raise InputError("not an EPUB (not a zip archive)", path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_sizes(path, infos, limits)
            names = {i.filename for i in infos}
            for name in names:
                if name.startswith("/") or ".." in posixpath.normpath(name).split("/"):
                    raise InputError(f"archive member {name!r} points outside the book", path)
            if "META-INF/container.xml" not in names:
                raise InputError("not an EPUB (META-INF/container.xml missing)", path)
            if "META-INF/encryption.xml" in names and _has_encrypted_content(zf):
                raise UnsupportedError("is DRM-protected (META-INF/encryption.xml); remove DRM first", path)
            bad = zf.testzip()
            if bad is not None:
                raise InputError(f"archive member {bad!r} is corrupt", path)
            for info in infos:
                if info.filename.lower().endswith((".xml", ".opf", ".ncx", ".xhtml", ".html", ".htm")):
                    head = zf.read(info)[:65536]
                    if _ENTITY_DECL.search(head):
                        raise InputError(f"{info.filename} declares XML entities (refused: entity bombs)", path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"not a readable EPUB (truncated or corrupt zip: {exc})", path) from exc
    except (EOFError, OSError) as exc:
        raise InputError(f"not a readable EPUB ({exc})", path) from exc


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
        raise InputError(f"archive decompresses to {total} bytes (limit {limits.max_total_bytes})", path)


def _has_encrypted_content(zf: zipfile.ZipFile) -> bool:
    """Font obfuscation (IDPF/Adobe) also uses encryption.xml; only other algorithms mean DRM."""
    root = safe_xml(zf.read("META-INF/encryption.xml"))
    obfuscation = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")
    for method in root.iter("{*}EncryptionMethod"):
        if method.get("Algorithm", "") not in obfuscation:
            return True
    return False


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                          recover=True)


def safe_xml(data: bytes) -> etree._Element:
    """Parse XML/XHTML with entity expansion, DTD loading and network access disabled."""
    root = etree.fromstring(data, parser=_PARSER)
    if root is None:
        raise ValueError("empty or unparseable XML")
    return root
