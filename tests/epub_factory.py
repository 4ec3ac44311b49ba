"""Builds EPUB files by hand (zipfile + strings), so tests control every byte: nav, NCX, anchors,
cover, broken variants. Also used to regenerate projects/sample-epub/."""
from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path


def tiny_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    raw = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def xhtml(body: str, title: str = "x", body_type: str = "") -> str:
    bt = f' epub:type="{body_type}"' if body_type else ""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
            f'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>{title}</title></head>'
            f'<body{bt}>{body}</body></html>')


@dataclass
class EpubSpec:
    title: str = "Test Book"
    author: str = "Ann Author"
    language: str = "en"
    docs: list[tuple[str, str]] = field(default_factory=list)  # (file name, xhtml text), spine order
    toc: list[tuple] = field(default_factory=list)  # (href, title) or (href, title, depth), depth 1 = top
    nav: bool = True
    ncx: bool = True
    cover: bytes | None = None
    extra: dict[str, bytes] = field(default_factory=dict)  # more zip members, verbatim


def build_epub(path: Path, spec: EpubSpec) -> Path:
    items, spine = [], []
    for i, (name, _) in enumerate(spec.docs):
        items.append(f'<item id="d{i}" href="{name}" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="d{i}"/>')
    if spec.nav:
        items.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
    if spec.ncx:
        items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
    if spec.cover:
        items.append('<item id="cover-img" href="cover.png" media-type="image/png" properties="cover-image"/>')
    opf = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="uid">urn:uuid:12345678-1234-1234-1234-123456789abc</dc:identifier>
<dc:title>{spec.title}</dc:title><dc:creator>{spec.author}</dc:creator>
{f'<dc:language>{spec.language}</dc:language>' if spec.language else ''}<dc:date>2024-05-01</dc:date>
<meta property="dcterms:modified">2024-05-01T00:00:00Z</meta>
{'<meta name="cover" content="cover-img"/>' if spec.cover else ''}
</metadata>
<manifest>{''.join(items)}</manifest>
<spine{' toc="ncx"' if spec.ncx else ''}>{''.join(spine)}</spine>
</package>"""
    nav_links, points = _nested(spec.toc)
    nav = xhtml(f'<nav epub:type="toc"><h1>Contents</h1><ol>{nav_links}</ol></nav>', "Contents")
    ncx = ('<?xml version="1.0" encoding="utf-8"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" '
           f'version="2005-1"><head/><docTitle><text>{spec.title}</text></docTitle>'
           f'<navMap>{points}</navMap></ncx>')
    container = ('<?xml version="1.0"?><container version="1.0" '
                 'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                 '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                 '</rootfiles></container>')
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        zf.writestr("META-INF/container.xml", container, zipfile.ZIP_DEFLATED)
        zf.writestr("OEBPS/content.opf", opf, zipfile.ZIP_DEFLATED)
        for name, text in spec.docs:
            zf.writestr(f"OEBPS/{name}", text, zipfile.ZIP_DEFLATED)
        if spec.nav:
            zf.writestr("OEBPS/nav.xhtml", nav, zipfile.ZIP_DEFLATED)
        if spec.ncx:
            zf.writestr("OEBPS/toc.ncx", ncx, zipfile.ZIP_DEFLATED)
        if spec.cover:
            zf.writestr("OEBPS/cover.png", spec.cover)
        for name, data in spec.extra.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED)
    return path


def _nested(toc: list[tuple]) -> tuple[str, str]:
    """The nav's <li> items and the NCX's navPoints for a TOC whose entries may carry a depth."""
    nav: list[str] = []
    ncx: list[str] = []
    stack: list[list] = []  # [level, its child list is open] of each <li> still open

    def close() -> None:
        _, has_list = stack.pop()
        nav.append("</ol></li>" if has_list else "</li>")
        ncx.append("</navPoint>")

    for i, entry in enumerate(toc):
        href, title, level = entry if len(entry) == 3 else (*entry, 1)
        while stack and stack[-1][0] >= level:
            close()
        if stack and not stack[-1][1]:
            nav.append("<ol>")
            stack[-1][1] = True
        nav.append(f'<li><a href="{href}">{title}</a>')
        ncx.append(f'<navPoint id="p{i}" playOrder="{i + 1}"><navLabel><text>{title}</text></navLabel>'
                   f'<content src="{href}"/>')
        stack.append([level, False])
    while stack:
        close()
    return "".join(nav), "".join(ncx)


def sample_spec() -> EpubSpec:
    """A small book: cover page, copyright page, one chapter per file, and one file holding two
    chapters that the TOC addresses by anchors; a footnote that must not be read inline."""
    return EpubSpec(
        title="The Lighthouse Keeper",
        author="Mei Lin",
        cover=tiny_png(),
        docs=[
            ("cover.xhtml", xhtml('<img src="cover.png" alt="cover"/>', "Cover", "cover")),
            ("copyright.xhtml", xhtml("<p>Copyright 2024 Mei Lin. All rights reserved.</p>",
                                      "Copyright", "copyright-page")),
            ("ch1.xhtml", xhtml('<h1>Chapter One</h1><p>The lamp was lit at dusk.<sup><a href="#fn1">1</a></sup> '
                                'Mei climbed the stairs.</p><hr/><p>She counted the ships.</p>'
                                '<aside epub:type="footnote" id="fn1"><p>An oil lamp.</p></aside>')),
            ("ch2.xhtml", xhtml('<h1 id="c2">Chapter Two</h1><p>A storm came from the east.</p>'
                                '<h1 id="c3">Chapter Three</h1><p>Morning was calm. 灯塔依然明亮。</p>')),
        ],
        toc=[("ch1.xhtml", "Chapter One"), ("ch2.xhtml#c2", "Chapter Two"), ("ch2.xhtml#c3", "Chapter Three")],
    )


# ------------------------------------------------------------------ hostile and broken variants
# Used by tests/test_bad_input_corpus.py: each function takes a well-formed book and breaks exactly
# one thing, so a test names the one problem it expects to be reported.


def rewrite_epub(src: Path, dest: Path, replace: dict[str, bytes | None] | None = None,
                 add: dict[str, bytes] | None = None) -> Path:
    """Copy `src` member by member into `dest`, replacing members named in `replace` (None drops the
    member) and appending `add` verbatim. Names are written as given: '../x' stays '../x'."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            if info.filename in replace:
                data = replace[info.filename]
                if data is None:
                    continue
            else:
                data = zin.read(info)
            zout.writestr(info, data, info.compress_type)
        for name, data in add.items():
            zout.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    return dest


def forge_declared_size(path: Path, member: str, size: int) -> Path:
    """Make `member` claim to decompress to `size` bytes (as a zip bomb's headers do) by patching the
    uncompressed-size field of its local header and its central-directory record in place."""
    assert size < 0xFFFFFFFF, "sizes from 4 GiB up need zip64 records"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(member).header_offset
        central = zf.start_dir
    assert data[local:local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, local + 22, size)
    pos = central
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, pos + 24, size)
        pos += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))
    return path


def entity_bomb_doctype(root: str, levels: int = 10, fanout: int = 10) -> str:
    """A 'billion laughs' DOCTYPE for `root`: entity `e{levels}` expands to fanout**levels copies."""
    decls = ['<!ENTITY e0 "ha">']
    decls += [f'<!ENTITY e{i} "{f"&e{i - 1};" * fanout}">' for i in range(1, levels + 1)]
    return f"<!DOCTYPE {root} [\n" + "\n".join(decls) + "\n]>"


def encryption_xml(algorithm: str, uri: str) -> bytes:
    """META-INF/encryption.xml declaring `uri` (a member path) encrypted with `algorithm`."""
    return ('<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            f'<enc:EncryptionMethod Algorithm="{algorithm}"/>'
            f'<enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData>'
            '</enc:EncryptedData></encryption>').encode()
