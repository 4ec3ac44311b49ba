"""EPUB reading: reading order, nav vs NCX titles, anchor splitting, skipped front matter, footnotes."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from epub_factory import EpubSpec, build_epub, sample_spec, tiny_png, xhtml
from ingest.epub import read_epub
from ingest.errors import InputError, UnsupportedError


def test_sample_book_chapters_titles_and_anchor_split(tmp_path: Path) -> None:
    book = read_epub(build_epub(tmp_path / "b.epub", sample_spec()))
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]
    # two TOC anchors in ch2.xhtml split it into two chapters, each with only its own text
    assert "storm" in book.chapters[1].text and "Morning" not in book.chapters[1].text
    assert "灯塔" in book.chapters[2].text and "storm" not in book.chapters[2].text
    assert book.chapters[1].source.endswith("#c2")


def test_front_matter_and_footnotes_are_not_read(tmp_path: Path) -> None:
    book = read_epub(build_epub(tmp_path / "b.epub", sample_spec()))
    everything = " ".join(c.text for c in book.chapters)
    assert "Copyright" not in everything and "rights reserved" not in everything
    assert "An oil lamp" not in everything  # footnote body
    assert "dusk. Mei" in everything  # note reference mark removed, sentence intact
    kinds = [b.kind for b in book.chapters[0].blocks]
    assert kinds == ["heading", "paragraph", "section_break", "paragraph"]


def test_metadata_and_cover(tmp_path: Path) -> None:
    book = read_epub(build_epub(tmp_path / "b.epub", sample_spec()))
    assert book.meta.title == "The Lighthouse Keeper"
    assert book.meta.author == "Mei Lin"
    assert book.meta.language == "en" and book.meta.year == "2024"
    assert book.meta.cover == tiny_png() and book.meta.cover_mime == "image/png"


def test_ncx_titles_when_there_is_no_nav(tmp_path: Path) -> None:
    spec = sample_spec()
    spec.nav = False
    spec.toc = [("ch1.xhtml", "One (NCX)"), ("ch2.xhtml#c2", "Two (NCX)"), ("ch2.xhtml#c3", "Three (NCX)")]
    book = read_epub(build_epub(tmp_path / "b.epub", spec))
    assert [c.title for c in book.chapters] == ["One (NCX)", "Two (NCX)", "Three (NCX)"]


def test_nav_wins_over_ncx(tmp_path: Path) -> None:
    spec = sample_spec()
    book = read_epub(build_epub(tmp_path / "b.epub", spec))
    assert book.chapters[0].title == "Chapter One"


def test_file_without_toc_entry_continues_previous_chapter(tmp_path: Path) -> None:
    spec = EpubSpec(docs=[("a.xhtml", xhtml("<h1>A</h1><p>First part.</p>")),
                          ("a2.xhtml", xhtml("<p>Second part of A.</p>")),
                          ("b.xhtml", xhtml("<h1>B</h1><p>Text of B.</p>"))],
                    toc=[("a.xhtml", "A"), ("b.xhtml", "B")])
    book = read_epub(build_epub(tmp_path / "b.epub", spec))
    assert [c.title for c in book.chapters] == ["A", "B"]
    assert "Second part of A." in book.chapters[0].text


def test_reading_order_is_the_spine_not_the_toc(tmp_path: Path) -> None:
    spec = EpubSpec(docs=[("x.xhtml", xhtml("<p>Spine first.</p>")), ("y.xhtml", xhtml("<p>Spine second.</p>"))],
                    toc=[("y.xhtml", "Y"), ("x.xhtml", "X")])
    book = read_epub(build_epub(tmp_path / "b.epub", spec))
    assert [c.title for c in book.chapters] == ["X", "Y"]


@pytest.mark.parametrize("case", ["missing", "directory", "not_zip", "truncated", "no_text", "drm",
                                  "entity_bomb", "toc_missing_file", "zip_bomb"])
def test_bad_epubs_raise_one_clear_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.epub"
    expected: type[Exception] = InputError
    if case == "missing":
        pass
    elif case == "directory":
        path.mkdir()
    elif case == "not_zip":
        path.write_text("this is plain text renamed to .epub")
    elif case == "truncated":
        build_epub(tmp_path / "good.epub", sample_spec())
        data = (tmp_path / "good.epub").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "no_text":
        build_epub(path, EpubSpec(docs=[("a.xhtml", xhtml('<img src="x.png" alt=""/>'))], toc=[("a.xhtml", "A")]))
    elif case == "drm":
        enc = (b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
               b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:EncryptionMethod '
               b'Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/></enc:EncryptedData></encryption>')
        spec = sample_spec()
        spec.extra = {"META-INF/encryption.xml": enc}
        build_epub(path, spec)
        expected = UnsupportedError
    elif case == "entity_bomb":
        bomb = ('<?xml version="1.0"?><!DOCTYPE html [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&b;</p></body></html>')
        build_epub(path, EpubSpec(docs=[("a.xhtml", bomb)], toc=[("a.xhtml", "A")]))
    elif case == "toc_missing_file":
        build_epub(path, EpubSpec(docs=[("a.xhtml", xhtml("<p>Text.</p>"))],
                                  toc=[("a.xhtml", "A"), ("gone.xhtml", "Gone")]))
    elif case == "zip_bomb":
        spec = sample_spec()
        spec.extra = {"OEBPS/huge.bin": b"\0" * (300 << 20)}
        build_epub(path, spec)
    with pytest.raises(expected) as err:
        read_epub(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message


def test_member_path_escaping_the_archive_is_refused(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "b.epub", sample_spec())
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("../../evil.txt", "x")
    with pytest.raises(InputError, match="outside"):
        read_epub(path)


def test_ornament_paragraphs_are_scene_breaks(tmp_path: Path) -> None:
    """Gutenberg sets scene breaks as '<p>* * *</p>' (or ⁂) far more often than <hr/>: a pause, not
    text. A paragraph that merely contains asterisks is still read."""
    spec = sample_spec()
    spec.docs[2] = ("ch1.xhtml", xhtml('<h1>Chapter One</h1><p>The lamp was lit.</p>'
                                       '<p class="tb">*       *       *       *       *</p><p>Dawn came.</p>'
                                       '<p>⁂</p><p>She slept. * Not really.</p>'))
    book = read_epub(build_epub(tmp_path / "b.epub", spec))
    blocks = book.chapters[0].blocks
    assert [b.kind for b in blocks] == ["heading", "paragraph", "section_break", "paragraph", "section_break",
                                        "paragraph"]
    assert blocks[-1].text == "She slept. * Not really."


def test_gutenberg_footnotes_are_not_read(tmp_path: Path) -> None:
    """Project Gutenberg marks notes by class and id only: the '[1]' marks and the FOOTNOTES block
    were read aloud ('dusk one Mei climbed ...'). Other links stay text."""
    spec = sample_spec()
    spec.docs[2] = ("ch1.xhtml", xhtml(
        '<h1>Chapter One</h1><p>The lamp was lit at dusk.<a id="FNanchor_1_1" href="#Footnote_1_1" '
        'class="fnanchor">[1]</a> Mei climbed the stairs.<a href="#Footnote_2_2" class="fnanchor">2</a> See '
        '<a href="#c3">Chapter 3</a>.</p><p>She counted ships.</p><div class="footnotes"><h3>FOOTNOTES:</h3>'
        '<div class="footnote"><p><a id="Footnote_1_1" href="#FNanchor_1_1"><span class="label">[1]</span>'
        '</a> An oil lamp.</p></div><div class="footnote"><p>[2] Ninety-nine.</p></div></div>'))
    book = read_epub(build_epub(tmp_path / "b.epub", spec))
    chapter = book.chapters[0]
    assert [b.text for b in chapter.blocks] == ["Chapter One", "The lamp was lit at dusk. Mei climbed the stairs. "
                                                "See Chapter 3.", "She counted ships."]
    assert [s.what for s in chapter.skipped] == ["footnote"] and "An oil lamp" in chapter.skipped[0].excerpt


def test_footnotes_read_where_the_book_puts_them(tmp_path: Path) -> None:
    """[reading] footnotes = "read": a note standing alone is announced ("Note.") and read where it
    is; a block of notes under its own heading is read as it stands, each note's '[2]' label left
    out. Reference marks in the text are never read."""
    from ingest.reading import Reading

    spec = sample_spec()
    spec.docs[2] = ("ch1.xhtml", xhtml(
        '<h1>Chapter One</h1><p>The lamp was lit.<a href="#fn9" epub:type="noteref">*</a> Mei climbed.'
        '<a id="FNanchor_1_1" href="#Footnote_1_1" class="fnanchor">[1]</a></p>'
        '<aside epub:type="footnote" id="fn9"><p>An aside note.</p></aside><p>She counted ships.</p>'
        '<div class="footnotes"><h3>FOOTNOTES:</h3><div class="footnote"><p><a id="Footnote_1_1" '
        'href="#FNanchor_1_1"><span class="label">[1]</span></a> An oil lamp.</p></div>'
        '<div class="footnote"><p>[2] Ninety-nine.</p></div></div>'))
    path = build_epub(tmp_path / "b.epub", spec)
    chapter = read_epub(path, Reading(footnotes="read")).chapters[0]
    assert [(b.text, b.note) for b in chapter.blocks] == [
        ("Chapter One", ""), ("The lamp was lit. Mei climbed.", ""), ("Note.", "footnote"), ("An aside note.", ""),
        ("She counted ships.", ""), ("FOOTNOTES:", ""), ("An oil lamp.", ""), ("Ninety-nine.", "")]
    assert chapter.skipped == ()
    assert "An aside" not in read_epub(path).chapters[0].text
    with pytest.raises(ValueError, match="footnotes must be read or skip"):
        Reading.from_table({"footnotes": "note"}, "project.toml")
