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
from gpt_sovits_fixtures import fixture_path

from flows.cli import build_parser, main
from ingest.errors import BookcastError

ROOT = Path(__file__).resolve().parents[1]
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


@book_case("duplicate_member_names")
def _(tmp: Path) -> Bad:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is asked to write
        return _bad_epub(tmp, "two members named 'OEBPS/ch1.xhtml'",
                         add={"OEBPS/ch1.xhtml": xhtml("<p>A different chapter one.</p>").encode()})


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


@book_case("xhtml_nested_too_deep")
def _(tmp: Path) -> Bad:
    deep = xhtml("<h1>One</h1>" + "<div>" * 300 + "<p>Text a parser would drop.</p>" + "</div>" * 300)
    return _bad_epub(tmp, "ch1.xhtml: XML too deeply nested", replace={"OEBPS/ch1.xhtml": deep.encode()})


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


@book_case("project_voice_folder_missing")
def _(tmp: Path) -> Bad:
    (tmp / "proj").mkdir()
    write(tmp / "proj" / "book.md", "# One\n\nA short chapter.\n")
    write(tmp / "proj" / "project.toml", '[book]\nsource = "book.md"\n\n[voice]\nengine = "gpt-sovits"\n'
                                         'path = "voices/alice"\n')
    return Bad([str(tmp / "proj")], tmp / "proj" / "voices" / "alice", "voice folder not found")


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
    assert re.search(problem, line, re.IGNORECASE), f"{problem!r} not in: {line}"
    assert "Traceback" not in line
    return line


def assert_no_output(out: Path) -> None:
    if not out.exists():
        return
    left = [p for p in out.rglob("*") if p.suffix in (".mp3", ".part", ".m4b", ".xml") or p.name == "manifest.json"]
    assert not left, left


def check_only(argv: list[str]) -> list[str]:
    """The `make` preflight (flows/steps/preflight.py) on `argv`, without the CLI around it: the
    error line `main` would print, or [] when the input passes."""
    from flows.make_cmd import options_from, parse_chapters
    from flows.steps.preflight import check_make

    args = build_parser().parse_args(["make", *argv])
    try:
        check_make(args.project, args.out, parse_chapters(args.chapters), options_from(args))
    except BookcastError as exc:
        return [f"bookcast: error: {exc}"]
    return []


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_bad_book_is_rejected_with_one_clear_line(tmp_path: Path, name: str) -> None:
    """Every case at the preflight level (what `make` runs before Prefect): cheap, so the corpus
    can grow; the CLI around it is exercised by the three cases below."""
    case = BOOKS[name](tmp_path)
    out = tmp_path / "out"
    argv = case.argv + ([] if "--out" in case.argv else ["--out", str(out)])
    assert_one_error_line(1, check_only(argv), case.named, case.problem)
    assert_no_output(out)
    assert not (tmp_path / "PWNED_BY_YAML").exists()


@pytest.mark.parametrize("name", ["drm_encrypted", "zip_bomb_ratio", "missing_file"])
def test_bad_book_through_the_cli(tmp_path: Path, capsys, name: str) -> None:
    """The same answer through `bookcast make`, with nothing else on stderr (Prefect is never
    started for bad input)."""
    case = BOOKS[name](tmp_path)
    out = tmp_path / "out"
    rc, _, err = run_cli(["make", *case.argv, "--out", str(out), "--workers", "0"], capsys)
    assert_one_error_line(rc, err, case.named, case.problem)
    assert_no_output(out)


@pytest.mark.parametrize("toml", ['[book]\nsource = "book.md"\n[voice]\nseed = "abc"\n', 'book = "book.md"\n'],
                         ids=["seed_not_a_number", "book_not_a_table"])
def test_project_toml_with_wrong_types(prefect_harness, tmp_path: Path, capsys, toml: str) -> None:
    (tmp_path / "proj").mkdir()
    write(tmp_path / "proj" / "book.md", "# One\n\nA short chapter.\n")
    write(tmp_path / "proj" / "project.toml", toml)
    rc, _, err = run_cli(["make", str(tmp_path / "proj"), "--out", str(tmp_path / "out"), "--workers", "0"], capsys)
    assert_one_error_line(rc, err, tmp_path / "proj" / "project.toml", "must be|expected|invalid")


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


# ------------------------------------------------------------------------------------ voice folders

def _fixture(name: str) -> Path:
    return fixture_path(name)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, Path]:
    """(bert, hubert): the smallest models the voice check accepts (BERT 1024 wide with 2 layers,
    HuBERT 768 wide), random weights in Hugging Face layout."""
    import torch
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertTokenizer,
        HubertConfig,
        HubertModel,
    )
    from transformers.utils import logging as hf_logging

    # The CLI turns Hugging Face progress bars off (flows.runtime) before transformers is imported;
    # this test process imported it first, so do here what that environment setting does.
    hf_logging.disable_progress_bar()

    root = tmp_path_factory.mktemp("pretrained")
    bert, hubert = root / "bert", root / "hubert"
    bert.mkdir()
    (bert / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"今天好。"]) + "\n",
                                    encoding="utf-8")
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=9, hidden_size=1024, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=32, max_position_embeddings=64)).save_pretrained(bert)
    BertTokenizer(str(bert / "vocab.txt")).save_pretrained(bert)
    HubertModel(HubertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32,
                             conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                             num_conv_pos_embedding_groups=4)).save_pretrained(hubert)
    return bert, hubert


def clip(path: Path, seconds: float, level: float = 0.1, rate: int = 32000) -> Path:
    """A noise clip (a stand-in for speech: the check measures length and level only)."""
    noise = np.random.default_rng(1).uniform(-level, level, int(seconds * rate)).astype(np.float32)
    sf.write(str(path), noise, rate, subtype="PCM_16")
    return path


def voice_folder(tmp: Path, pretrained: tuple[Path, Path], references: tuple[str, ...] = ("ref.wav",)) -> Path:
    """A usable voice: the tiny fixture weights (copied, so a case may damage them), a 4 s clip."""
    folder = tmp / "voice"
    folder.mkdir()
    shutil.copyfile(_fixture("tiny-e1.ckpt"), folder / "tiny-e1.ckpt")
    shutil.copyfile(_fixture("tiny_e1_s1.pth"), folder / "tiny_e1_s1.pth")
    clip(folder / "ref.wav", 4.0)
    refs = "".join(f'\n[[reference]]\naudio = "{r}"\nlanguage = "zh"\n' for r in references)
    write(folder / "voice.toml", f'gpt = "tiny-e1.ckpt"\nsovits = "tiny_e1_s1.pth"\nbert = "{pretrained[0]}"\n'
                                 f'hubert = "{pretrained[1]}"\n{refs}')
    return folder


class _Payload:
    """Pickles into a call of os.system; loading must refuse it before anything runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _retag(path: Path, head: bytes) -> None:
    path.write_bytes(head + path.read_bytes()[2:])


def _unlink(path: Path) -> None:
    path.unlink()


def _link(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: 5 << 20])


# name: (damage to the good voice folder, file name the line must carry, problem)
VOICES: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "voice_weights_missing": (lambda v: _unlink(v / "tiny_e1_s1.pth"), "tiny_e1_s1.pth", "not found"),
    "voice_reference_missing": (lambda v: _unlink(v / "ref.wav"), "ref.wav", "not found"),
    "voice_weights_are_dev_zero": (lambda v: _link(v / "tiny-e1.ckpt", "/dev/zero"), "/dev/zero",
                                   "is not a regular file"),
    "voice_reference_is_a_fifo": (lambda v: _fifo(v / "ref.wav"), "ref.wav", "is not a regular file"),
    "voice_checkpoint_truncated": (lambda v: _truncate(v / "tiny_e1_s1.pth"), "tiny_e1_s1.pth",
                                   "truncated or corrupt"),
    "voice_checkpoint_version_05": (lambda v: _retag(v / "tiny_e1_s1.pth", b"05"), "tiny_e1_s1.pth",
                                    "version v2Pro; bookcast supports only GPT-SoVITS v2"),
    "voice_checkpoint_version_04": (lambda v: _retag(v / "tiny_e1_s1.pth", b"04"), "tiny_e1_s1.pth",
                                    "version v4-lora; bookcast supports only GPT-SoVITS v2"),
    "voice_reference_silent": (lambda v: clip(v / "ref.wav", 4.0, level=0.0), "ref.wav", "silent"),
    "voice_reference_too_short": (lambda v: clip(v / "ref.wav", 2.0), "ref.wav", r"2\.00 s; it must be 3–10 s"),
    "voice_reference_too_long": (lambda v: clip(v / "ref.wav", 12.5), "ref.wav", r"12\.50 s; it must be 3–10 s"),
}


def test_voice_folder_missing(tmp_path: Path, capsys) -> None:
    rc, _, err = run_cli(["voice", "check", str(tmp_path / "no-such-voice")], capsys)
    assert_one_error_line(rc, err, tmp_path / "no-such-voice", "voice folder not found")


def test_good_voice_passes_the_check(tmp_path: Path, capsys, pretrained) -> None:
    rc, out, err = run_cli(["voice", "check", str(voice_folder(tmp_path, pretrained))], capsys)
    assert rc == 0 and not err, err
    assert out.splitlines()[-1].startswith("OK: 0 error(s)")


@pytest.mark.parametrize("name", sorted(VOICES))
def test_bad_voice_is_rejected_with_one_clear_line(tmp_path: Path, capsys, pretrained, name: str) -> None:
    folder = voice_folder(tmp_path, pretrained)
    damage, file_name, problem = VOICES[name]
    damage(folder)
    rc, out, err = run_cli(["voice", "check", str(folder)], capsys)
    line = assert_one_error_line(rc, err, folder, problem)
    assert file_name in line, f"{file_name} not named in: {line}"
    assert out.splitlines()[-1].startswith("NOT USABLE: 1 error(s)"), out  # only the damage is reported


def test_checkpoint_whose_pickle_runs_code_is_refused(tmp_path: Path, capsys, pretrained) -> None:
    import torch

    folder = voice_folder(tmp_path, pretrained)
    marker = tmp_path / "PWNED_BY_PICKLE"
    torch.save({"weight": {"model.x": torch.zeros(1)}, "config": {"model": {}}, "boom": _Payload(marker)},
               folder / "tiny-e1.ckpt")
    rc, _, err = run_cli(["voice", "check", str(folder)], capsys)
    assert_one_error_line(rc, err, folder / "tiny-e1.ckpt", "refusing to load")
    assert not marker.exists(), "the pickle's code ran"
    # the same payload does run under a plain unpickler: the test would notice a loader that ran it
    torch.load(folder / "tiny-e1.ckpt", weights_only=False)
    assert marker.exists()


# ------------------------------------------------------------------------------------- disk full

def test_disk_full_while_exporting_fails_the_chapters_cleanly(prefect_harness, tmp_path: Path, capsys,
                                                             monkeypatch) -> None:
    """ENOSPC on the rename that would publish an MP3: each chapter is recorded as failed (the flow's
    per-chapter isolation), exit 2, one error line naming the chapters and the problem, no MP3 and no
    temporary file left. Once space is back, the same command finishes from the clip cache."""
    book = write(tmp_path / "book.md", "# One\n\nThe first chapter.\n\n# Two\n\nThe second chapter.\n")
    out = tmp_path / "out"
    real_replace = os.replace

    def full_disk(src, dst, *args, **kwargs):
        if str(dst).endswith(".mp3"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_disk)
    rc, _, err = run_cli(["make", str(book), "--out", str(out), "--workers", "0"], capsys)
    assert rc == 2, err
    errors = [ln for ln in err if ln.startswith("bookcast: error:")]
    assert len(errors) == 1 and not any("Traceback" in ln for ln in err), err
    assert "2 chapter(s) failed: 1 (One), 2 (Two)" in errors[0]
    assert "No space left on device" in errors[0] and "01-one.mp3" in errors[0]
    assert not list(out.glob("*.mp3")) and not list(out.rglob("*.part")), list(out.rglob("*"))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [c["status"] for c in manifest["chapters"]] == ["failed", "failed"]

    monkeypatch.setattr(os, "replace", real_replace)
    rc, _, err = run_cli(["make", str(book), "--out", str(out), "--workers", "0"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.glob("*.mp3")) == ["01-one.mp3", "02-two.mp3"]
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["this_run"]["synthesized"] == 0


# ------------------------------------------------------------------------- input that must be read

def _words(n_chars: int, seed: int = 7) -> str:
    """`n_chars` of lower-case English words, no punctuation, no repeating pattern."""
    vocab = ["the", "keeper", "climbed", "narrow", "stairs", "and", "counted", "every", "ship", "that", "passed", "beneath", "lamp", "while", "sea", "moved", "slowly", "under", "grey", "clouds", "wind", "carried", "salt", "over", "rocks", "gulls", "circled", "harbour", "boats", "waited", "light", "turned", "steady", "night", "long", "morning", "came", "calm"]
    rng = np.random.default_rng(seed)
    text = " ".join(vocab[i] for i in rng.integers(0, len(vocab), n_chars // 3))
    return text[:n_chars].rstrip()


def test_long_unpunctuated_paragraph_is_cut_not_rejected() -> None:
    """The front end cuts a 50,000-character run-on paragraph into sentences an engine can speak,
    losing no word (the CLI run on the same text is the slow test below)."""
    from ingest.segment import segment
    from synth.engines import engine_info

    text = _words(50_000)
    for engine in ("espeak", "gpt-sovits"):
        config = engine_info(engine).frontend
        sentences = segment(text, "en", config=config)
        assert len(sentences) > 10
        assert max(len(s.text.split()) * 2 for s in sentences) <= config.max_units
        assert " ".join(s.text for s in sentences).split() == text.split()


@pytest.mark.slow
def test_long_unpunctuated_paragraph_is_synthesized(prefect_harness, tmp_path: Path, capsys) -> None:
    text = _words(50_000)
    assert len(text) >= 49_990 and not re.search(r"[.,;:!?]", text)
    book = write(tmp_path / "long.md", f"# Run On\n\n{text}\n")
    out = tmp_path / "out"
    rc, _, err = run_cli(["make", str(book), "--out", str(out), "--workers", "0"], capsys)
    assert rc == 0, err
    audio, rate = sf.read(str(out / "01-run-on.mp3"))
    assert len(audio) / rate > 20 * 60  # ~8,000 words: well over twenty minutes of speech


def test_emoji_and_control_characters_are_stripped(prefect_harness, tmp_path: Path, capsys) -> None:
    text = "Good morning 😀🚀 everyone\u200b.\x07 The bell\x1b[31m rang\x0b twice ✨\ufe0f today\u00ad."
    book = write(tmp_path / "book.md", f"# Emoji 🎉\n\n{text}\n")
    out = tmp_path / "out"
    rc, _, err = run_cli(["make", str(book), "--out", str(out), "--workers", "0"], capsys)
    assert rc == 0, err
    chapter = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["chapters"][0]
    spoken = " ".join(text for _, _, text in chapter["spans"])
    assert "Good morning everyone" in spoken and "rang" in spoken and "today" in spoken
    assert not re.search("[\U0001F000-\U0001FAFF\u2728\ufe0f\u200b\u00ad\x00-\x1f\x7f]", spoken), repr(spoken)
    audio, rate = sf.read(str(out / chapter["file"]))
    assert len(audio) / rate > 2.0


def test_japanese_and_korean_are_warned_skipped_and_the_run_completes(prefect_harness, tmp_path: Path,
                                                                     capsys, caplog) -> None:
    book = write(tmp_path / "book.md", "# One\n\nAn English chapter.\n\n"
                                       "# Two\n\nThe harbour was quiet. ひらがなとカタカナ。\n\n"
                                       "# Three\n\n안녕하세요 여러분. The end.\n")
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="ingest.segment"):
        rc, _, err = run_cli(["make", str(book), "--out", str(out), "--workers", "0"], capsys)
    assert rc == 0, err
    warnings = [r.getMessage() for r in caplog.records if r.name == "ingest.segment"]
    assert any("chapter 2 (Two)" in w and "Japanese" in w for w in warnings), warnings
    assert any("chapter 3 (Three)" in w and "Korean" in w for w in warnings), warnings
    chapters = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["chapters"]
    assert [c["status"] for c in chapters] == ["ok", "ok", "ok"]
    spoken = " ".join(t for c in chapters for _, _, t in c["spans"])
    assert "The harbour was quiet" in spoken and "The end" in spoken
    assert not re.search("[\u3040-\u30ff\uac00-\ud7af]", spoken), spoken
    assert len(list(out.glob("*.mp3"))) == 3


# ---------------------------------------------------------------------------------------- security

def test_external_dtd_and_entities_are_never_loaded(tmp_path: Path) -> None:
    """An external DTD defining an entity is neither fetched nor read, by our parser or by the one
    ebooklib uses for the OPF/NCX; its secret never reaches the book's text."""
    from ebooklib.utils import parse_string

    from ingest.epub import read_epub
    from ingest.safety import safe_xml

    dtd = write(tmp_path / "secret.dtd", '<!ENTITY secret "TOPSECRET">')
    doc = f'<?xml version="1.0"?><!DOCTYPE html SYSTEM "{dtd.as_uri()}">{XHTML_ROOT}<body><p>A &secret; B</p></body></html>'
    assert "TOPSECRET" not in "".join(safe_xml(doc.encode()).itertext())
    assert "TOPSECRET" not in "".join(parse_string(doc.encode()).getroot().itertext())
    spec = sample_spec()
    spec.docs = spec.docs[:2] + [("ch1.xhtml", doc)] + spec.docs[3:]
    text = read_epub(build_epub(tmp_path / "dtd.epub", spec)).chapters[0].text
    assert text.startswith("A ") and text.endswith(" B") and "TOPSECRET" not in text


def test_obfuscated_fonts_and_illustrator_svg_are_not_refused(tmp_path: Path) -> None:
    """Font obfuscation is listed in encryption.xml but is not DRM; an SVG image declaring entities
    (as Illustrator exports do) is never parsed, so it is no risk and no reason to refuse a book."""
    from ingest.epub import read_epub

    svg = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY ns_svg "http://www.w3.org/2000/svg">]>'
           b'<svg xmlns="&ns_svg;" width="1" height="1"/>')
    enc = encryption_xml("http://www.idpf.org/2008/embedding", "OEBPS/font.otf")
    src = good_epub(tmp_path)
    with zipfile.ZipFile(src) as zf:
        opf = zf.read("OEBPS/content.opf").decode().replace(
            "<manifest>", '<manifest><item id="f" href="font.otf" media-type="font/otf"/>'
                          '<item id="s" href="map.svg" media-type="image/svg+xml"/>')
    path = rewrite_epub(src, tmp_path / "fonts.epub", replace={"OEBPS/content.opf": opf.encode()},
                        add={"META-INF/encryption.xml": enc, "OEBPS/font.otf": os.urandom(2048),
                             "OEBPS/map.svg": svg})
    assert [c.title for c in read_epub(path).chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]


def test_every_xml_parse_in_ingest_goes_through_safe_xml() -> None:
    """No module of ingest/ may call lxml or the standard library's XML parsers directly."""
    direct = re.compile(r"etree\.(fromstring|parse|XML|HTML|iterparse|XMLParser)\b|xml\.(etree|dom|sax)|minidom")
    offenders = []
    for path in sorted((ROOT / "ingest").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if direct.search(line) and path.name != "safety.py":
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_prefect_servers_bind_to_localhost(monkeypatch, tmp_path: Path) -> None:
    """The ephemeral API (flows.runtime defaults) and the server `bookcast serve` starts listen on
    127.0.0.1 only."""
    import subprocess

    from flows import podcast_cmd, runtime

    assert runtime.DEFAULTS["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    started: list[tuple[list[str], dict]] = []

    class FakeServer:
        returncode = None

        def __init__(self, args, env=None, **kwargs):
            started.append((list(args), dict(env or {})))

        def poll(self):
            return None

        def terminate(self):
            return None

    answers = iter([False, True])  # nothing listening yet; then the started server answers
    monkeypatch.setenv("PREFECT_API_URL", "")  # recorded, so the value ensure_api sets is undone after the test
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    monkeypatch.setattr(podcast_cmd, "_healthy", lambda url: next(answers))
    assert podcast_cmd.ensure_api(4321) is not None
    args, env = started[0]
    assert args[args.index("--host") + 1] == "127.0.0.1" and env["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4321/api"
