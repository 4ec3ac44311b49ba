"""Hostile input, round two, at library level: every case gets a specific answer (a message naming
the problem, or a notice saying what was left out), no hang (growth checks: time at 4n against n),
bounded memory (tracemalloc peak) and nothing written next to the input.

The inputs are generated here; nothing large is shipped. Big files are sparse (a 3-hour WAV costs
no disk) or pipes and devices (`/dev/zero`, a FIFO), which a reader must refuse by type before it
reads a byte.
"""
from __future__ import annotations

import os
import random
import struct
import tracemalloc
import wave
import zipfile
import zlib
from pathlib import Path

import pytest
from epub_factory import EpubSpec, build_epub, rewrite_epub, tiny_png, xhtml
from growth import LINEAR, growth

from ingest.errors import BookcastError, InputError
from ingest.lengths import cut_long
from ingest.markdown import read_markdown, strip_comments
from ingest.reader import MAX_CHAPTERS, read_book

MB = 1 << 20


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def answer(fn, *args, limit_mb: float = 64):
    """Call `fn`; return its result or the BookcastError it raised, and check the peak of Python
    and numpy allocations stayed under `limit_mb`."""
    tracemalloc.start()
    try:
        try:
            result = fn(*args)
        except BookcastError as exc:
            result = exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit_mb * MB, f"peak {peak / MB:.0f} MB"
    return result


def refused(result, *words: str) -> str:
    assert isinstance(result, BookcastError), f"accepted: {result!r}"
    text = str(result)
    assert "Error" not in text.split(":")[-1] or "error" in words, text  # no library class names
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in: {text}"
    return text


def _words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocab = ["alpha", "river", "stone", "green", "house", "quiet", "motion", "paper", "light", "window"]
    return " ".join(rng.choice(vocab) for _ in range(n))


def _book(tmp: Path, **changes) -> Path:
    spec = EpubSpec(docs=[("c1.xhtml", xhtml("<h1>One</h1><p>A first chapter, short and plain.</p>"))],
                    toc=[("c1.xhtml", "One")])
    for key, value in changes.items():
        setattr(spec, key, value)
    return build_epub(tmp / "book.epub", spec)


def _replace_opf(tmp: Path, old: str, new: str, name: str = "bad.epub") -> Path:
    src = _book(tmp)
    with zipfile.ZipFile(src) as zf:
        opf = zf.read("OEBPS/content.opf").decode()
    assert old in opf
    return rewrite_epub(src, tmp / name, {"OEBPS/content.opf": opf.replace(old, new).encode()})


def _with_symlink(tmp: Path, member: str, target: str) -> Path:
    path = _book(tmp)
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo(member)
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, target)
    return path


# ------------------------------------------------------------------------------------ EPUB package

def test_package_without_a_spine(tmp_path: Path) -> None:
    book = _replace_opf(tmp_path, '<spine toc="ncx"><itemref idref="d0"/></spine>', "")
    refused(answer(read_book, book), "has no <spine>", "reading order", str(book))


def test_spine_toc_pointing_at_xhtml(tmp_path: Path) -> None:
    book = _replace_opf(tmp_path, '<spine toc="ncx">', '<spine toc="d0">')
    refused(answer(read_book, book), "toc='d0'", "not an NCX document")


def test_spine_toc_naming_nothing(tmp_path: Path) -> None:
    book = _replace_opf(tmp_path, '<spine toc="ncx">', '<spine toc="nowhere">')
    refused(answer(read_book, book), "toc='nowhere'", "not in the manifest")


def test_spine_of_ten_thousand_documents_refused_before_parsing(tmp_path: Path) -> None:
    book = _replace_opf(tmp_path, '<itemref idref="d0"/>', '<itemref idref="d0"/>' * 10_001)
    refused(answer(read_book, book), "10,001 documents", "limit 10,000")


def test_more_chapters_than_any_book_has(tmp_path: Path) -> None:
    md = tmp_path / "many.md"
    md.write_text("".join(f"# H{i}\n\nText {i}.\n\n" for i in range(MAX_CHAPTERS + 1)), encoding="utf-8")
    refused(answer(read_book, md), f"{MAX_CHAPTERS + 1:,} chapters", f"at most {MAX_CHAPTERS:,}")


def test_many_chapters_within_the_limit_read_in_linear_time() -> None:
    import tempfile

    folder = Path(tempfile.mkdtemp())

    def at(n: int):
        path = folder / f"h{n}.md"
        path.write_text("".join(f"# H{i}\n\nText {i}.\n\n" for i in range(n)), encoding="utf-8")
        return lambda: read_book(path)

    assert growth(at, 400) < LINEAR


def test_symlink_member_is_reported(tmp_path: Path) -> None:
    book = answer(read_book, _with_symlink(tmp_path, "OEBPS/extra.txt", "/etc/passwd"))
    assert any("symbolic link" in n and "/etc/passwd" in n for n in book.notices), book.notices
    assert "root:" not in " ".join(c.text for c in book.chapters)


def test_symlink_member_used_as_a_document_is_refused(tmp_path: Path) -> None:
    src = _book(tmp_path)
    path = tmp_path / "linked.epub"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "OEBPS/c1.xhtml":
                info.create_system, info.external_attr, data = 3, 0o120777 << 16, b"/etc/passwd"
            zout.writestr(info, data)
    refused(answer(read_book, path), "OEBPS/c1.xhtml", "symbolic link", "/etc/passwd")


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(  # noqa: E731
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    body = zlib.compress(b"\0" * 65536, 9)  # a few hundred bytes that claim far more
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_decompression_bomb_cover_is_left_out_and_reported(tmp_path: Path) -> None:
    book = answer(read_book, _book(tmp_path, cover=_png_header(100_000, 100_000)))
    assert book.meta.cover is None
    assert any("100000 × 100000 pixels" in n for n in book.notices), book.notices


def test_cover_that_is_not_an_image_is_left_out_and_reported(tmp_path: Path) -> None:
    book = answer(read_book, _book(tmp_path, cover=b"GIF89a" + bytes(100)))
    assert book.meta.cover is None and any("not a readable JPEG or PNG" in n for n in book.notices)


def test_a_good_cover_is_kept_without_a_notice(tmp_path: Path) -> None:
    book = answer(read_book, _book(tmp_path, cover=tiny_png(600, 600)))
    assert book.meta.cover is not None and book.meta.cover_mime == "image/png" and not book.notices


def test_five_megabyte_paragraph_is_read_in_bounded_time_and_memory(tmp_path: Path) -> None:
    text = _words(850_000)  # ~5 MB, no punctuation at all
    book = answer(read_book, _book(tmp_path, docs=[("c1.xhtml", xhtml(f"<h1>One</h1><p>{text}</p>"))]),
                  limit_mb=400)
    assert sum(len(b.text) for b in book.chapters[0].blocks) > 4 * MB


def test_unpunctuated_text_is_cut_in_linear_time() -> None:
    assert growth(lambda n: (lambda t=_words(n): cut_long(t, 40)), 5_000) < LINEAR


def test_unpunctuated_chinese_is_cut_in_linear_time() -> None:
    han = "我们用模型训练数据今天天气真好"
    assert growth(lambda n: (lambda t=(han * (n // len(han) + 1))[:n]: cut_long(t, 40)), 5_000) < LINEAR


# ------------------------------------------------------------------------------------ Markdown

def test_unclosed_comments_are_linear_and_reported(tmp_path: Path) -> None:
    assert growth(lambda n: (lambda t="<!-- x\n" * n: strip_comments(t)), 20_000) < LINEAR
    md = tmp_path / "c.md"
    md.write_text("# T\n\nSaid aloud.\n\n<!-- closed -->\n\nAlso said.\n\n" + "<!-- x\n" * 200_000, encoding="utf-8")
    book = answer(read_markdown, md)
    assert [b.text for b in book.chapters[0].blocks[1:]] == ["Said aloud.", "Also said."]
    assert book.notices == ("the HTML comment opened on line 9 is never closed; nothing after it is read",)


def test_comments_closed_and_unclosed_mixed() -> None:
    assert strip_comments("a<!-- 1 -->b<!-- 2 -->c") == ("abc", None)
    assert strip_comments("a<!-- 1 -->b<!-- open") == ("ab", 12)


def test_ten_megabyte_line_is_read(tmp_path: Path) -> None:
    md = tmp_path / "line.md"
    md.write_text("# T\n\n" + _words(1_750_000) + "\n", encoding="utf-8")  # ~10 MiB, one line
    book = answer(read_markdown, md, limit_mb=600)
    assert len(book.chapters) == 1 and len(book.chapters[0].blocks[1].text) > 9 * MB


@pytest.mark.parametrize("nesting", ["[" * 20_000 + "]" * 20_000, "\n".join("  " * i + "-" for i in range(200)),
                                     "- " * 20_000 + "x", "{a: " * 5000 + "1" + "}" * 5000],
                         ids=["flow-lists", "block-lists", "dash-lists", "flow-maps"])
def test_deeply_nested_front_matter(tmp_path: Path, nesting: str) -> None:
    md = tmp_path / "deep.md"
    md.write_text(f"---\ntitle: T\nx: {nesting}\n---\n# One\n\nText.\n", encoding="utf-8")
    result = answer(read_markdown, md)
    if isinstance(result, BookcastError):
        refused(result, str(md), "front matter")
    else:  # a nesting PyYAML handles without recursing out is fine
        assert result.meta.title == "T"


def test_front_matter_larger_than_metadata_needs(tmp_path: Path) -> None:
    md = tmp_path / "big.md"
    md.write_text("---\ntitle: T\ndescription: " + "x" * (70 << 10) + "\n---\n# One\n\nText.\n", encoding="utf-8")
    refused(answer(read_markdown, md), "front matter is 70 KiB", "over 64 KiB")


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom"])
def test_book_that_is_a_device(tmp_path: Path, target: str) -> None:
    link = tmp_path / "book.md"
    link.symlink_to(target)
    refused(answer(read_book, link), "not a regular file")


def test_book_that_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "book.md"
    os.mkfifo(fifo)
    refused(answer(read_book, fifo), "not a regular file")  # never opened: opening would block


# --------------------------------------------------------------------------------- audio files

def _sparse_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """A valid 16-bit mono WAV of `seconds` of silence whose data costs no disk (a sparse file)."""
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * 10)
    size = frames * 2
    with path.open("r+b") as fh:
        fh.seek(4)
        fh.write(struct.pack("<I", 36 + size))
        fh.seek(40)
        fh.write(struct.pack("<I", size))
        fh.truncate(44 + size)
    return path


def test_reference_clip_of_three_hours_refused_from_its_header(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from synth.engines.gpt_sovits.model.ssl import read_audio

    clip = _sparse_wav(tmp_path / "ref.wav", 3 * 3600)
    refused(answer(read_audio, clip, limit_mb=8), "10,800 s long", "3-10 s", str(clip))


def test_reference_clip_that_is_a_device(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from synth.engines.gpt_sovits.model.ssl import read_audio

    link = tmp_path / "ref.wav"
    link.symlink_to("/dev/zero")
    refused(answer(read_audio, link), "not a regular file")


def test_qc_of_an_hour_long_file_in_bounded_memory(tmp_path: Path) -> None:
    from mastering.presets import get_preset
    from mastering.qc import qc_file

    wav = _sparse_wav(tmp_path / "long.wav", 3600)  # 57 MB of samples, 230 MB as float64
    report = answer(qc_file, wav, get_preset("acx"), limit_mb=40)
    assert abs(report.measures.duration_s - 3600) < 0.01 and not report.passed  # silence fails ACX


def test_qc_of_a_device_or_folder(tmp_path: Path) -> None:
    from mastering.presets import get_preset
    from mastering.qc import qc_file

    link = tmp_path / "x.wav"
    link.symlink_to("/dev/zero")
    refused(answer(qc_file, link, get_preset("acx")), str(link))
    refused(answer(qc_file, tmp_path, get_preset("acx")), str(tmp_path))


def test_nothing_is_written_beside_the_inputs(tmp_path: Path) -> None:
    book = _with_symlink(tmp_path, "OEBPS/x", "/etc/passwd")
    md = tmp_path / "c.md"
    md.write_text("# T\n\nText.\n<!-- open\n", encoding="utf-8")
    before = _files(tmp_path)
    read_book(book), read_book(md)
    assert _files(tmp_path) == before


def test_inputerror_names_the_file(tmp_path: Path) -> None:
    book = _replace_opf(tmp_path, '<spine toc="ncx">', '<spine toc="d0">')
    with pytest.raises(InputError) as info:
        read_book(book)
    assert str(info.value).startswith(str(book))


@pytest.mark.slow
def test_bookcast_qc_of_a_ten_hour_file_stays_under_500_mb(tmp_path: Path) -> None:
    """A real 10-hour signal (speech-like bursts over noise, 16 kHz, 1.15 GB WAV) through the CLI,
    its whole process tree sampled: qc reads any length in bounded memory."""
    import subprocess
    import sys
    import time

    import numpy as np
    import psutil
    import soundfile as sf

    rate, path = 16000, tmp_path / "ten-hours.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", rate, 1, "PCM_16") as fh:
        t = np.arange(60 * rate) / rate
        for minute in range(600):
            burst = (np.sin(2 * np.pi * 3.1 * t) > 0.2) * np.sin(2 * np.pi * (180 + minute % 40) * t)
            fh.write((0.2 * burst + 0.003 * rng.standard_normal(len(t))).astype(np.float32))
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "qc", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [watched, *watched.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out, err = proc.communicate()
    assert "600.0" in out, out + err  # the table's minutes column: all ten hours were measured
    assert peak < 500 * MB, f"peak RSS {peak / MB:.0f} MB"
    print(f"bookcast qc, 10 h file: peak RSS {peak / MB:.0f} MB")
