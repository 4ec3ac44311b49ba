"""The bad-input corpus: hostile or broken files through the real `bookcast` CLI, in process.

Every rejected case must end with exit status 1, exactly one stderr line `bookcast: error: ...`
naming the file and the problem, no traceback and no output (no MP3, no manifest, no half-written
temporary file). Every file is generated here, inside tmp_path. A second group checks input that
must NOT be rejected (a 50,000-character paragraph, emoji and control characters, Japanese/Korean
text) and the security rules: nothing outside the book is read, no XML entity is expanded, no DTD or
network resource is loaded, Prefect servers bind to 127.0.0.1.

Two runs on one project at the same time: tests/test_orchestration.py
(test_second_run_on_the_same_output_refuses_clearly).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from epub_factory import (
    EpubSpec,
    build_epub,
    encryption_xml,
    entity_bomb_doctype,
    forge_declared_size,
    rewrite_epub,
    sample_spec,
    tiny_png,
    xhtml,
)
from flows.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "gpt_sovits_v2"
XHTML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
XHTML_ROOT = '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head>'


@dataclass(frozen=True)
class Bad:
    """One rejected input: the CLI arguments after the subcommand, the file the error line must
    name and a regular expression (case-insensitive) for the problem it must state."""

    argv: list[str]
    named: Path
    problem: str


BOOKS: dict[str, Callable[[Path], Bad]] = {}


def book_case(name: str):
    def register(fn: Callable[[Path], Bad]) -> Callable[[Path], Bad]:
        BOOKS[name] = fn
        return fn
    return register


def good_epub(tmp: Path, name: str = "good.epub") -> Path:
    return build_epub(tmp / name, sample_spec())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _bad_epub(tmp: Path, problem: str, **rewrite) -> Bad:
    path = rewrite_epub(good_epub(tmp), tmp / "bad.epub", **rewrite)
    return Bad([str(path)], path, problem)


# ------------------------------------------------------------------------------ files and archives

@book_case("missing_file")
def _(tmp: Path) -> Bad:
    return Bad([str(tmp / "nope.epub")], tmp / "nope.epub", "file not found")


@book_case("directory_instead_of_file")
def _(tmp: Path) -> Bad:
    (tmp / "book.epub").mkdir()
    return Bad([str(tmp / "book.epub")], tmp / "book.epub", "no project.toml")


@book_case("project_source_is_a_directory")
def _(tmp: Path) -> Bad:
    (tmp / "proj" / "book.md").mkdir(parents=True)
    write(tmp / "proj" / "project.toml", '[book]\nsource = "book.md"\n')
    return Bad([str(tmp / "proj")], tmp / "proj" / "book.md", "is a directory")


@book_case("project_toml_invalid")
def _(tmp: Path) -> Bad:
    (tmp / "proj").mkdir()
    write(tmp / "proj" / "project.toml", '[book\nsource = "book.md"\n')
    return Bad([str(tmp / "proj")], tmp / "proj" / "project.toml", "invalid TOML")


@book_case("unsupported_file_type")
def _(tmp: Path) -> Bad:
    path = tmp / "book.pdf"
    path.write_bytes(b"%PDF-1.7\n")
    return Bad([str(path)], path, "unsupported file type")


@book_case("not_a_zip")
def _(tmp: Path) -> Bad:
    path = write(tmp / "notes.epub", "plain text, renamed to .epub")
    return Bad([str(path)], path, "not a zip archive")


@book_case("truncated_zip")
def _(tmp: Path) -> Bad:
    data = good_epub(tmp).read_bytes()
    path = tmp / "cut.epub"
    path.write_bytes(data[: len(data) * 2 // 3])
    return Bad([str(path)], path, "truncated")


@book_case("corrupt_member_crc")
def _(tmp: Path) -> Bad:
    path = good_epub(tmp, "crc.epub")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("OEBPS/ch1.xhtml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF  # one flipped byte inside the deflate stream
    path.write_bytes(bytes(data))
    return Bad([str(path)], path, "corrupt")


@book_case("drm_encrypted")
def _(tmp: Path) -> Bad:
    enc = encryption_xml("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "OEBPS/ch1.xhtml")
    return _bad_epub(tmp, "DRM", add={"META-INF/encryption.xml": enc})


@book_case("password_protected_member")
def _(tmp: Path) -> Bad:
    path = good_epub(tmp, "locked.epub")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local, central = zf.getinfo("OEBPS/ch1.xhtml").header_offset, zf.start_dir
    data[local + 6] |= 0x1  # general-purpose flag bit 0: encrypted
    pos = central
    while data[pos:pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + n] == b"OEBPS/ch1.xhtml":
            data[pos + 8] |= 0x1
        pos += 46 + n + m + k
    path.write_bytes(bytes(data))
    return Bad([str(path)], path, "password-protected")


@book_case("zip_bomb_ratio")
def _(tmp: Path) -> Bad:
    return _bad_epub(tmp, r"compression ratio \d+:1 \(zip bomb", add={"OEBPS/filler.xhtml": b" " * (8 << 20)})


@book_case("zip_bomb_declared_size")
def _(tmp: Path) -> Bad:
    path = forge_declared_size(good_epub(tmp, "bomb.epub"), "OEBPS/ch2.xhtml", 0xF000_0000)
    return Bad([str(path)], path, r"decompresses to 4026531840 bytes .*zip bomb")


@book_case("member_path_escapes_archive")
def _(tmp: Path) -> Bad:
    return _bad_epub(tmp, "'../../evil.xhtml' points outside the book", add={"../../evil.xhtml": b"<p>x</p>"})


@book_case("member_path_absolute")
def _(tmp: Path) -> Bad:
    return _bad_epub(tmp, "'/etc/cron.d/evil' points outside the book", add={"/etc/cron.d/evil": b"x"})


# ------------------------------------------------------------------------------------ XML inside

def _chapter_with_doctype(doctype: str, body: str = "<p>&e10;</p>", pad: str = "") -> str:
    return f"{XHTML_HEAD}{pad}{doctype}{XHTML_ROOT}<body><h1>One</h1>{body}</body></html>"


@book_case("entity_bomb_xhtml")
def _(tmp: Path) -> Bad:
    bomb = _chapter_with_doctype(entity_bomb_doctype("html"))
    return _bad_epub(tmp, "ch1.xhtml declares XML entities", replace={"OEBPS/ch1.xhtml": bomb.encode()})


@book_case("entity_bomb_xhtml_after_64k_comment")
def _(tmp: Path) -> Bad:
    bomb = _chapter_with_doctype(entity_bomb_doctype("html"), pad="<!--" + "x" * 100_000 + "-->")
    return _bad_epub(tmp, "ch1.xhtml declares XML entities", replace={"OEBPS/ch1.xhtml": bomb.encode()})


@book_case("entity_bomb_opf")
def _(tmp: Path) -> Bad:
    with zipfile.ZipFile(good_epub(tmp)) as zf:
        opf = zf.read("OEBPS/content.opf").decode()
    opf = opf.replace("?>\n", "?>\n" + entity_bomb_doctype("package") + "\n", 1)
    opf = opf.replace("<dc:title>The Lighthouse Keeper", "<dc:title>&e10;")
    return _bad_epub(tmp, "content.opf declares XML entities", replace={"OEBPS/content.opf": opf.encode()})


@book_case("entity_bomb_opf_utf16")
def _(tmp: Path) -> Bad:
    with zipfile.ZipFile(good_epub(tmp)) as zf:
        opf = zf.read("OEBPS/content.opf").decode()
    opf = opf.replace('encoding="utf-8"?>\n', 'encoding="UTF-16"?>\n' + entity_bomb_doctype("package") + "\n", 1)
    return _bad_epub(tmp, "content.opf declares XML entities",
                     replace={"OEBPS/content.opf": opf.encode("utf-16")})


@book_case("external_entity_xxe")
def _(tmp: Path) -> Bad:
    xxe = _chapter_with_doctype('<!DOCTYPE html [<!ENTITY secret SYSTEM "file:///etc/passwd">]>', "<p>&secret;</p>")
    return _bad_epub(tmp, "ch1.xhtml declares XML entities", replace={"OEBPS/ch1.xhtml": xxe.encode()})


# ---------------------------------------------------------------------------------- EPUB structure

@book_case("epub_with_no_text")
def _(tmp: Path) -> Bad:
    path = build_epub(tmp / "empty.epub", EpubSpec(docs=[("a.xhtml", xhtml("<p>  </p><div></div>"))],
                                                   toc=[("a.xhtml", "A")]))
    return Bad([str(path)], path, "no readable text")


@book_case("image_only_epub")
def _(tmp: Path) -> Bad:
    pages = [(f"p{i}.xhtml", xhtml(f'<img src="cover.png" alt="page {i}"/>')) for i in range(3)]
    path = build_epub(tmp / "scan.epub", EpubSpec(docs=pages, toc=[(n, n) for n, _ in pages], cover=tiny_png()))
    return Bad([str(path)], path, "no readable text")


@book_case("opf_missing")
def _(tmp: Path) -> Bad:
    return _bad_epub(tmp, r"package document 'OEBPS/content.opf' \(named in META-INF/container.xml\) is missing",
                     replace={"OEBPS/content.opf": None})


@book_case("container_missing")
def _(tmp: Path) -> Bad:
    return _bad_epub(tmp, "META-INF/container.xml missing", replace={"META-INF/container.xml": None})


@book_case("manifest_item_missing")
def _(tmp: Path) -> Bad:
    return _bad_epub(tmp, "manifest item 'ch2.xhtml' is missing", replace={"OEBPS/ch2.xhtml": None})


@book_case("manifest_href_outside_book")
def _(tmp: Path) -> Bad:
    with zipfile.ZipFile(good_epub(tmp)) as zf:
        opf = zf.read("OEBPS/content.opf").decode().replace('href="ch2.xhtml"', 'href="../../etc/passwd"')
    return _bad_epub(tmp, "'../../etc/passwd' points outside the book", replace={"OEBPS/content.opf": opf.encode()})


@book_case("nav_points_to_missing_file")
def _(tmp: Path) -> Bad:
    spec = sample_spec()
    spec.toc = spec.toc + [("gone.xhtml", "Gone")]
    path = build_epub(tmp / "nav.epub", spec)
    return Bad([str(path)], path, "table of contents points to missing file 'gone.xhtml'")


@book_case("nav_points_outside_book")
def _(tmp: Path) -> Bad:
    spec = sample_spec()
    spec.toc = [("../../etc/passwd", "Secrets")] + spec.toc
    path = build_epub(tmp / "escape.epub", spec)
    return Bad([str(path)], path, "'../../etc/passwd' in nav.xhtml points outside the book")


# ---------------------------------------------------------------------------------------- Markdown

@book_case("markdown_invalid_utf8")
def _(tmp: Path) -> Bad:
    path = tmp / "book.md"
    path.write_bytes("# Title\n\nCafé ".encode() + b"\xff\xfe\xc3(" + b" end.\n")
    return Bad([str(path)], path, r"not valid UTF-8 text \(byte 15\)")


@book_case("markdown_broken_front_matter")
def _(tmp: Path) -> Bad:
    path = write(tmp / "book.md", "---\ntitle: [unclosed\nauthor: Ann\n---\n# One\n\nText.\n")
    return Bad([str(path)], path, "broken YAML front matter")


@book_case("markdown_front_matter_python_tag")
def _(tmp: Path) -> Bad:
    marker = tmp / "PWNED_BY_YAML"
    path = write(tmp / "book.md", f"---\ntitle: !!python/object/apply:os.system ['touch {marker}']\n---\n"
                                  "# One\n\nText.\n")
    return Bad([str(path)], path, "broken YAML front matter.*python/object")


@book_case("markdown_front_matter_alias_bomb")
def _(tmp: Path) -> Bad:
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = write(tmp / "book.md", "---\n" + "\n".join(levels) + "\ntitle: *a9\n---\n# One\n\nText.\n")
    return Bad([str(path)], path, "front matter 'title' must be a single value")


@book_case("markdown_no_text")
def _(tmp: Path) -> Bad:
    path = write(tmp / "book.md", "<!-- draft -->\n\n```\nprint('only code')\n```\n")
    return Bad([str(path)], path, "no readable text")


@book_case("markdown_too_large")
def _(tmp: Path) -> Bad:
    path = tmp / "huge.md"
    with path.open("wb") as fh:  # sparse: costs no disk
        fh.truncate(200 << 20)
    return Bad([str(path)], path, "is 200 MiB; text files over 64 MiB are refused")


# ------------------------------------------------------------------------------------ output folder

@book_case("output_under_a_regular_file")
def _(tmp: Path) -> Bad:
    book = write(tmp / "book.md", "# One\n\nA short chapter.\n")
    blocker = write(tmp / "file.txt", "I am a file, not a folder")
    return Bad([str(book), "--out", str(blocker / "sub")], blocker / "sub", "cannot write here")


# ------------------------------------------------------------------------------------- the runner

def run_cli(argv: list[str], capsys) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, [ln for ln in captured.err.splitlines() if ln.strip()]


def assert_one_error_line(rc: int, err: list[str], named: Path, problem: str) -> str:
    assert rc == 1, (rc, err)
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("bookcast: error: "), line
    assert str(named) in line, f"{named} not named in: {line}"
    assert re.search(problem, line, re.I), f"{problem!r} not in: {line}"
    assert "Traceback" not in line
    return line


def assert_no_output(out: Path) -> None:
    if not out.exists():
        return
    left = [p for p in out.rglob("*") if p.suffix in (".mp3", ".part", ".m4b", ".xml") or p.name == "manifest.json"]
    assert not left, left


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_bad_book_is_rejected_with_one_clear_line(prefect_harness, tmp_path: Path, capsys, name: str) -> None:
    case = BOOKS[name](tmp_path)
    out = tmp_path / "out"
    argv = ["make", *case.argv] + ([] if "--out" in case.argv else ["--out", str(out)]) + ["--workers", "0"]
    rc, _, err = run_cli(argv, capsys)
    assert_one_error_line(rc, err, case.named, case.problem)
    assert_no_output(out)
    assert not (tmp_path / "PWNED_BY_YAML").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder(prefect_harness, tmp_path: Path, capsys) -> None:
    book = write(tmp_path / "book.md", "# One\n\nA short chapter.\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, _, err = run_cli(["make", str(book), "--out", str(locked / "out"), "--workers", "0"], capsys)
        assert_one_error_line(rc, err, locked / "out", "cannot write here")
    finally:
        locked.chmod(0o700)
