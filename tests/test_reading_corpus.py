"""What a narrator reads, case by case: labelled EPUB fragments, Markdown and sentences with the
text they must be spoken as (issue: real books, tried by ear). Each case names the bullet it
covers; expected texts are the normalised runs joined with " | " between language runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from epub_factory import EpubSpec, build_epub, xhtml
from ingest.epub import read_epub
from ingest.frontend import FrontendConfig
from ingest.markdown import read_markdown
from ingest.model import Chapter, Skip
from ingest.normalize.en import normalize_en
from ingest.reading import Reading
from ingest.script import chapter_script
from ingest.xhtml import Block, extract_blocks

ROOT = Path(__file__).resolve().parents[1]


def said(chapter: Chapter, lang: str = "en") -> str:
    """What the chapter's script speaks: each sentence's runs, " | " between runs, " / " between sentences."""
    return " / ".join(" | ".join(run.text for run in line.sentence.runs)
                      for line in chapter_script(chapter, lang))


def xhtml_said(body: str, reading: Reading = Reading(), lang: str = "en") -> str:
    root = etree.fromstring(xhtml(body).encode())
    blocks = tuple(b for b in extract_blocks(root, reading=reading, language=lang) if isinstance(b, Block))
    return said(Chapter("c", blocks), lang)


def xhtml_skips(body: str, reading: Reading = Reading()) -> list[tuple[str, str]]:
    root = etree.fromstring(xhtml(body).encode())
    return [(s.what, s.action) for s in extract_blocks(root, reading=reading) if isinstance(s, Skip)]


def md_book(tmp_path: Path, text: str, reading: Reading = Reading()):
    path = tmp_path / "book.md"
    path.write_text(text, encoding="utf-8")
    return read_markdown(path, reading)


def md_said(tmp_path: Path, text: str, reading: Reading = Reading()) -> str:
    book = md_book(tmp_path, text, reading)
    lang = "zh" if book.meta.language.startswith("zh") else "en"
    return " // ".join(said(c, lang) for c in book.chapters)


# ------------------------------------------------------------------ not for the ear: EPUB elements

EPUB_CASES = [
    # (id, body, reading, expected spoken text, expected (what, action) records)
    ("pre-code-note", "<p>Before.</p><pre>&lt;itemref idref=\"c1\"/&gt;</pre><p>After.</p>", Reading(),
     "Before. / A code listing follows; see the book. / After.", [("code", "note")]),
    ("pre-code-skip", "<p>Before.</p><pre>x = 1</pre>", Reading(code="skip"), "Before.", [("code", "skip")]),
    ("pre-code-read", "<pre>print hello</pre>", Reading(code="read"), "print hello", []),
    ("code-class-div", "<div class=\"programlisting\">if x then y</div><p>Done.</p>", Reading(),
     "A code listing follows; see the book. / Done.", [("code", "note")]),
    ("table-note", "<p>Data.</p><table><tr><td>12</td><td>34</td></tr></table>", Reading(),
     "Data. / A table follows; see the book.", [("table", "note")]),
    ("table-read", "<table><tr><td>Apples</td><td>Pears</td></tr></table>", Reading(tables="read"),
     "Apples / Pears", []),
    ("figure-with-table", "<figure><table><tr><td>1</td></tr></table><figcaption>Sales</figcaption></figure>",
     Reading(), "A table follows; see the book.", [("table", "note")]),
    ("figure-image-skipped", "<p>See below.</p><figure><img src=\"a.png\" alt=\"x\"/><figcaption>A map.</figcaption>"
     "</figure>", Reading(), "See below.", [("figure", "skip")]),
    ("figure-note", "<figure><img src=\"a.png\" alt=\"x\"/><figcaption>A map.</figcaption></figure><p>On.</p>",
     Reading(figures="note"), "A figure follows; see the book. / On.", [("figure", "note")]),
    ("poem-line-number", "<div class=\"linegroup\"><div>And went on in sunlight, into the Hofgarten,"
     "<span class=\"lnum\">10</span></div></div>", Reading(),
     "And went on in sunlight, into the Hofgarten,", [("line-number", "skip")]),
    ("line-number-read", "<p>Into the Hofgarten,<span class=\"lnum\">10</span></p>", Reading(line_numbers="read"),
     "Into the Hofgarten, ten", []),
    ("mathml-alttext", "<p>Area is <math alttext=\"pi r squared\"><mi>x</mi></math> exactly.</p>", Reading(),
     "Area is pi r squared exactly.", []),
    ("mathml-inline-note", "<p>Take <math><mi>x</mi><mo>+</mo><mn>1</mn></math> now.</p>", Reading(),
     "Take a formula now.", [("math", "note")]),
    ("mathml-block-note", "<p>Thus:</p><math display=\"block\"><mi>E</mi></math><p>Next.</p>", Reading(),
     "Thus: / An equation follows; see the book. / Next.", [("math", "note")]),
    ("mathml-skip", "<p>Take <math><mi>x</mi></math> now.</p>", Reading(math="skip"), "Take now.", [("math", "skip")]),
    ("footnote-aside", "<p>Text.<a epub:type=\"noteref\" href=\"#n1\">1</a></p>"
     "<aside epub:type=\"footnote\" id=\"n1\"><p>The note body.</p></aside>", Reading(), "Text.",
     [("footnote", "skip")]),
    ("sup-noteref", "<p>Claim<sup><a href=\"#fn2\">2</a></sup> made.</p>", Reading(), "Claim made.", []),
    ("pagebreak", "<p>One <span epub:type=\"pagebreak\" title=\"12\">12</span>two.</p>", Reading(), "One two.",
     [("page-number", "skip")]),
    ("zh-code-note", "<p>示例如下。</p><pre>x = 1</pre>", Reading(), "示例如下。 / 此处有一段代码，请参阅原书。",
     [("code", "note")]),
]


@pytest.mark.parametrize("body,reading,expected,records", [c[1:] for c in EPUB_CASES], ids=[c[0] for c in EPUB_CASES])
def test_epub_elements(body: str, reading: Reading, expected: str, records: list) -> None:
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in expected) else "en"
    assert xhtml_said(body, reading, lang) == expected
    assert xhtml_skips(body, reading) == records


# ------------------------------------------------------------------ not for the ear: Markdown

MD_CASES = [
    ("fenced-code", "# A\n\nBefore.\n\n```python\nprint('x')\n```\n\nAfter.\n",
     "A / Before. / A code listing follows; see the book. / After."),
    ("indented-code", "# A\n\nBefore.\n\n    x = 1\n    y = 2\n\nAfter.\n",
     "A / Before. / A code listing follows; see the book. / After."),
    ("gfm-table", "# A\n\nData.\n\n| a | b |\n| :--- | ---: |\n| 1 | 2 |\n\nEnd.\n",
     "A / Data. / A table follows; see the book. / End."),
    ("inline-tex-simple", "# A\n\nAn image of $200\\times200$ pixels.\n",
     "A / An image of two hundred times two hundred pixels."),
    ("inline-tex-square", "# A\n\nThe area is $x^2$ here.\n", "A / The area is x squared here."),
    ("inline-tex-complex", "# A\n\nWe get $\\frac{a}{b}$ at last.\n", "A / We get a formula at last."),
    ("display-tex", "# A\n\nThus\n\n$$\n\\sum_i x_i\n$$\n\nso.\n", "A / Thus / An equation follows; see the book. / so."),
    ("money-not-tex", "# A\n\nIt cost $5 and $10.\n", "A / It cost five dollars and ten dollars."),
    ("role-cite", "# A\n\nAttention is all you need :cite:`Vaswani.Shazeer.Parmar.ea.2017`.\n",
     "A / Attention is all you need."),
    ("role-numref", "# A\n\nAs shown in :numref:`fig_lenet`, it works.\n", "A / As shown in, it works."),
    ("role-label", "# A\n\n:label:`sec_intro`\n\nText here.\n", "A / Text here."),
    ("myst-role", "# A\n\nSee {cite}`smith2020` for more.\n", "A / See for more."),
    ("role-ref-title", "# A\n\nRead :ref:`the intro <sec_intro>` first.\n", "A / Read the intro first."),
    ("code-skip-setting", "# A\n\nBefore.\n\n```\nx\n```\n", "A / Before.", Reading(code="skip")),
    ("table-read-setting", "# A\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n", "A / a b one two", Reading(tables="read")),
]


@pytest.mark.parametrize("text,expected,reading", [(*c[1:3], c[3] if len(c) > 3 else Reading()) for c in MD_CASES],
                         ids=[c[0] for c in MD_CASES])
def test_markdown_elements(tmp_path: Path, text: str, expected: str, reading: Reading) -> None:
    assert md_said(tmp_path, text, reading) == expected


# ------------------------------------------------------------------ all-caps words

CAPS_CASES = [
    ("whale", "The WHALE rose.", "The Whale rose."),
    ("thar", "THAR she blows!", "Thar she blows!"),
    ("name-in-caps", "OSCAR WILDE wrote it.", "Oscar Wilde wrote it."),
    ("word-standards", "ARIA and DAISY help.", "Aria and Daisy help."),
    ("known-word-acronym", "NASA flew.", "Nasa flew."),
    ("fbi", "The FBI came.", "The F B I came."),
    ("no-vowel", "Write HTML now.", "Write H T M L now."),
    ("unpronounceable", "The IDPF said so.", "The I D P F said so."),
    ("cmu-letters", "The GDP grew.", "The G D P grew."),
    ("two-letters", "An AI on TV.", "An A I on T V."),
    ("emphasis-short-word", "I said NO to him.", "I said No to him."),
    ("plural-acronym", "Two CPUs ran.", "Two C P U's ran."),
    ("shouting-line", "THE BURIAL OF THE DEAD", "the burial of the dead"),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in CAPS_CASES], ids=[c[0] for c in CAPS_CASES])
def test_all_caps(text: str, expected: str) -> None:
    assert normalize_en(text) == expected


def test_all_caps_in_the_chinese_mix() -> None:
    chapter = Chapter("c", (Block("我们用 NASA 的数据和 GPU 训练模型。"),))
    assert said(chapter, "zh") == "我们用 | Nasa | 的数据和 | G P U | 训练模型。"


def test_lexicon_words_are_never_spelled() -> None:
    assert normalize_en("Ask IDPF.", keep=frozenset({"IDPF"})) == "Ask IDPF."


# ------------------------------------------------------------------ numbers

NUMBER_CASES = [
    ("en-typewriter-range", "en", "He lived 1904--1985.", "He lived nineteen oh four to nineteen eighty five."),
    ("en-dash-range-at-stop", "en", "See pages 10–12.", "See pages ten to twelve."),
    ("en-k-suffix", "en", "It has 1.2k stars.", "It has one point two thousand stars."),
    ("en-m-b-suffix", "en", "3M users and 7B weights.", "three million users and seven billion weights."),
    ("en-model-number", "en", "An RTX 3090 card.", "An R T X thirty ninety card."),
    ("en-model-attached", "en", "On an A100 or H200.", "On an A one hundred or H two hundred."),
    ("en-model-hyphen", "en", "A GTX-1080 card.", "A G T X ten eighty card."),
    ("en-version-dots", "en", "Install 2.0.1 now.", "Install two point zero point one now."),
    ("en-version-v", "en", "Use v2.1 today.", "Use version two point one today."),
    ("en-decimal", "en", "Accuracy was 0.85 overall.", "Accuracy was zero point eight five overall."),
    ("zh-typewriter-range", "zh", "他生于1904--1985年间。", "他生于一九零四到一九八五年间。"),
    ("zh-k-suffix", "zh", "模型有1.2k个参数。", "模型有一千二百个参数。"),
    ("zh-model-number", "zh", "用RTX 3090训练。", "用 | R T X thirty ninety | 训练。"),
    ("zh-decimal", "zh", "准确率0.85。", "准确率零点八五。"),
    ("zh-version", "zh", "版本4.0发布。", "版本四点零发布。"),
]


@pytest.mark.parametrize("lang,text,expected", [c[1:] for c in NUMBER_CASES], ids=[c[0] for c in NUMBER_CASES])
def test_numbers(lang: str, text: str, expected: str) -> None:
    assert said(Chapter("c", (Block(text),)), lang) == expected


# ------------------------------------------------------------------ language of the document

def test_chinese_markdown_without_front_matter_is_chinese(tmp_path: Path) -> None:
    book = md_book(tmp_path, "# 引言\n\n深度学习是机器学习的一个分支。我们用 PyTorch 训练模型。\n")
    assert book.meta.language == "zh"
    assert any("read as zh" in n for n in book.notices)


def test_english_markdown_stays_english(tmp_path: Path) -> None:
    book = md_book(tmp_path, "# Intro\n\nDeep learning is a branch of machine learning, and 深度学习 is its name.\n")
    assert book.meta.language == "en" and not book.notices


def test_front_matter_language_wins(tmp_path: Path) -> None:
    assert md_book(tmp_path, "---\nlanguage: en\n---\n# 引言\n\n深度学习是机器学习的一个分支。\n").meta.language == "en"


def test_epub_without_dc_language_is_judged_from_its_text(tmp_path: Path) -> None:
    spec = EpubSpec(language="", docs=[("c1.xhtml", xhtml("<h1>第一章</h1><p>深度学习是机器学习的一个分支，我们用它训练模型。</p>"))],
                    toc=[("c1.xhtml", "第一章")])
    assert read_epub(build_epub(tmp_path / "b.epub", spec)).meta.language == "zh"


# ------------------------------------------------------------------ structure

def _doc(title: str, words: int, tag: str = "h1") -> str:
    return xhtml(f"<{tag}>{title}</{tag}>" + "".join(f"<p>{title} sentence number {k} goes on.</p>"
                                                     for k in range(words // 6)))


def test_sub_sections_are_read_inside_their_chapter(tmp_path: Path) -> None:
    docs = [("c1.xhtml", _doc("One", 600)), ("c1a.xhtml", _doc("One A", 60, "h2")), ("c1b.xhtml", _doc("One B", 60, "h2")),
            ("c2.xhtml", _doc("Two", 600)), ("c2a.xhtml", _doc("Two A", 60, "h2"))]
    toc = [("c1.xhtml", "One", 1), ("c1a.xhtml", "One A", 2), ("c1b.xhtml", "One B", 2), ("c2.xhtml", "Two", 1),
           ("c2a.xhtml", "Two A", 2)]
    book = read_epub(build_epub(tmp_path / "b.epub", EpubSpec(docs=docs, toc=toc)))
    assert [c.title for c in book.chapters] == ["One", "Two"]
    assert "One B sentence" in book.chapters[0].text


def test_chapters_of_a_part_stay_apart_and_the_part_title_opens_the_first(tmp_path: Path) -> None:
    docs = [("p1.xhtml", xhtml("<h1>Part One</h1>")), ("c1.xhtml", _doc("Chapter 1", 600)),
            ("c2.xhtml", _doc("Chapter 2", 600))]
    toc = [("p1.xhtml", "Part One", 1), ("c1.xhtml", "Chapter 1", 2), ("c2.xhtml", "Chapter 2", 2)]
    book = read_epub(build_epub(tmp_path / "b.epub", EpubSpec(docs=docs, toc=toc)))
    assert [c.title for c in book.chapters] == ["Chapter 1", "Chapter 2"]
    assert book.chapters[0].blocks[0].text == "Part One"


def test_explicit_toc_depth(tmp_path: Path) -> None:
    docs = [("c1.xhtml", _doc("One", 600)), ("c1a.xhtml", _doc("One A", 60, "h2"))]
    toc = [("c1.xhtml", "One", 1), ("c1a.xhtml", "One A", 2)]
    path = build_epub(tmp_path / "b.epub", EpubSpec(docs=docs, toc=toc))
    assert [c.title for c in read_epub(path, Reading(toc_depth=2)).chapters] == ["One", "One A"]
    assert [c.title for c in read_epub(path, Reading(toc_depth=1)).chapters] == ["One"]


def test_heading_only_chapter_joins_the_next(tmp_path: Path) -> None:
    docs = [("h.xhtml", xhtml("<h1>Book Two</h1>")), ("c1.xhtml", _doc("Chapter 1", 120))]
    book = read_epub(build_epub(tmp_path / "b.epub", EpubSpec(docs=docs, toc=[("h.xhtml", "Book Two"),
                                                                               ("c1.xhtml", "Chapter 1")])))
    assert [c.title for c in book.chapters] == ["Chapter 1"]
    assert book.chapters[0].blocks[0].text == "Book Two"


def test_back_matter_is_left_out_and_listed(tmp_path: Path) -> None:
    docs = [("c1.xhtml", _doc("Chapter 1", 120)), ("bib.xhtml", _doc("Bibliography", 120))]
    book = read_epub(build_epub(tmp_path / "b.epub", EpubSpec(docs=docs, toc=[("c1.xhtml", "Chapter 1"),
                                                                               ("bib.xhtml", "Bibliography")])))
    assert [c.title for c in book.chapters] == ["Chapter 1"]
    assert [(t, s.what) for t, s in book.left_out] == [("Bibliography", "back-matter")]
    kept = read_epub(build_epub(tmp_path / "k.epub", EpubSpec(docs=docs, toc=[("c1.xhtml", "Chapter 1"),
                                                                               ("bib.xhtml", "Bibliography")])),
                     Reading(back_matter="read"))
    assert [c.title for c in kept.chapters] == ["Chapter 1", "Bibliography"]


def test_untyped_copyright_page_is_detected(tmp_path: Path) -> None:
    legal = xhtml("<p>Copyright © 2012 Example Media, Inc. All rights reserved.</p><p>Published by Example Media, "
                  "1005 Highway North. Call (800) 998-9938 or write to sales@example.com.</p><p>ISBN 978-1-449-32815-2</p>")
    docs = [("legal.xhtml", legal), ("c1.xhtml", _doc("Chapter 1", 120))]
    path = build_epub(tmp_path / "b.epub", EpubSpec(docs=docs, toc=[("c1.xhtml", "Chapter 1")]))
    book = read_epub(path)
    assert "All rights reserved" not in "".join(c.text for c in book.chapters)
    assert [s.what for _, s in book.left_out] == ["copyright"]
    assert "All rights reserved" in "".join(c.text for c in read_epub(path, Reading(copyright="read")).chapters)


def test_a_prose_page_mentioning_copyright_is_read(tmp_path: Path) -> None:
    text = xhtml("<p>" + "The old printer talked about copyright law and the price of paper all evening. " * 8 + "</p>")
    book = read_epub(build_epub(tmp_path / "b.epub", EpubSpec(docs=[("c1.xhtml", text)], toc=[("c1.xhtml", "One")])))
    assert "copyright law" in book.chapters[0].text and not book.left_out


def test_verse_lines_pause_briefly_and_the_stanza_end_like_a_paragraph() -> None:
    body = ("<div class=\"linegroup\"><div>April is the cruellest month, breeding</div>"
            "<div>Lilacs out of the dead land, mixing</div><div>Memory and desire, stirring</div></div>")
    root = etree.fromstring(xhtml(body).encode())
    blocks = tuple(b for b in extract_blocks(root) if isinstance(b, Block))
    assert [b.kind for b in blocks] == ["line", "line", "paragraph"]
    assert [ln.boundary for ln in chapter_script(Chapter("c", blocks))] == ["line", "line", "paragraph"]


def test_br_separated_lines_are_verse() -> None:
    root = etree.fromstring(xhtml("<p>Roses are red,<br/>violets are blue,<br/>sugar is sweet.</p>").encode())
    assert [b.kind for b in extract_blocks(root) if isinstance(b, Block)] == ["line", "line", "paragraph"]


def test_verse_off_reads_running_prose() -> None:
    root = etree.fromstring(xhtml("<p>Roses are red,<br/>violets are blue,<br/>sugar is sweet.</p>").encode())
    assert [b.kind for b in extract_blocks(root, reading=Reading(verse=False)) if isinstance(b, Block)] == ["paragraph"]


def test_line_pause_is_shorter_than_a_paragraph() -> None:
    from mastering.presets import get_preset

    preset = get_preset("acx")
    assert preset.pause_for("line") < preset.pause_for("paragraph")


def test_initials_never_split_a_sentence() -> None:
    lines = chapter_script(Chapter("c", (Block("T. S. Eliot wrote The Waste Land in 1922."),)))
    assert len(lines) == 1 and lines[0].sentence.runs[0].text.startswith("T S Eliot wrote")


def test_selection_number_is_read_with_the_title(tmp_path: Path) -> None:
    doc = xhtml("<section id=\"s191\"><h3>191</h3><p>An introduction to the tale, told briefly.</p>"
                "<h4>THE LORD HELPETH MAN AND BEAST</h4><p>Once upon a time.</p></section>")
    book = read_epub(build_epub(tmp_path / "b.epub", EpubSpec(docs=[("s.xhtml", doc)],
                                                              toc=[("s.xhtml#s191", "191 THE LORD HELPETH MAN AND BEAST")])))
    first = chapter_script(book.chapters[0])[0].sentence.runs[0].text
    assert first == "one hundred and ninety one, the lord helpeth man and beast"


# ------------------------------------------------------------------ preview lists what is not read

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_preview_json_lists_skipped_elements_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_text("# A\n\nBefore.\n\n```\ncode\n```\n\nSee :cite:`x2020`.\n", encoding="utf-8")
    out = _cli("preview", str(path), "--json")
    assert out.returncode == 0, out.stderr
    skipped = [json.loads(line)["skipped"] for line in out.stdout.splitlines() if '"skipped"' in line]
    assert [(s["what"], s["action"]) for s in skipped] == [("code", "note"), ("markup", "skip")]
    assert skipped[0]["reason"] == 'code listing: replaced by a short spoken note ([reading] code = "note")'


def test_preview_coverage_reports_shares_per_chapter(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_text("# A\n\nOne two three four five six.\n\n```\nalpha beta gamma delta\n```\n\n# B\n\nJust words here.\n",
                    encoding="utf-8")
    out = _cli("preview", str(path), "--coverage", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    first = report["chapters"][0]
    assert first["replaced"] == {"code": 4} and first["spoken"] == 7  # heading + six words
    text = _cli("preview", str(path), "--coverage").stdout
    assert "36.4% replaced (code 36.4%)" in text and "100.0% spoken" in text


def test_reading_settings_in_project_toml(tmp_path: Path) -> None:
    from flows.steps.project import load_project
    from ingest.errors import InputError

    (tmp_path / "b.md").write_text("# A\n\nText.\n", encoding="utf-8")
    (tmp_path / "project.toml").write_text('[book]\nsource = "b.md"\n[reading]\ncode = "skip"\ntoc_depth = 2\n')
    assert load_project(tmp_path).reading == Reading(code="skip", toc_depth=2)
    (tmp_path / "project.toml").write_text('[book]\nsource = "b.md"\n[reading]\ncode = "mumble"\n')
    with pytest.raises(InputError, match="code must be one of read, skip, note"):
        load_project(tmp_path)


# ------------------------------------------------------------------ passages in other languages

ESPEAK_FRONT = FrontendConfig(max_units=400, min_units=2, foreign_languages=True)


def runs_of(body: str, config: FrontendConfig) -> list[tuple[str, str]]:
    root = etree.fromstring(xhtml(body).encode())
    blocks = tuple(b for b in extract_blocks(root) if isinstance(b, Block))
    return [(run.lang, run.text) for line in chapter_script(Chapter("c", blocks), "en", config)
            for run in line.sentence.runs]


def test_marked_passage_keeps_its_language_with_espeak() -> None:
    body = '<p>He sang <span xml:lang="de">Frisch weht der Wind</span> to the sea.</p>'
    assert runs_of(body, ESPEAK_FRONT) == [("en", "He sang"), ("de", "Frisch weht der Wind"), ("en", "to the sea.")]


def test_marked_passage_is_read_in_the_book_voice_without_a_voice_for_it() -> None:
    body = '<p>He sang <span lang="la">respondebat illa</span> softly.</p>'
    assert runs_of(body, FrontendConfig()) == [("en", "He sang respondebat illa softly.")]


def test_greek_words_are_greek_not_letter_names() -> None:
    body = "<p>She asked Σίβυλλα τί θέλεις and the answer came.</p>"
    assert runs_of(body, ESPEAK_FRONT) == [("en", "She asked"), ("el", "Σίβυλλα τί θέλεις"),
                                           ("en", "and the answer came.")]
    assert "sigma" not in " ".join(t for _, t in runs_of(body, FrontendConfig()))  # skipped, not spelled


def test_a_lone_greek_letter_is_still_a_symbol() -> None:
    assert runs_of("<p>The ratio π is old.</p>", ESPEAK_FRONT) == [("en", "The ratio pi is old.")]


def test_english_inside_a_foreign_passage_is_english() -> None:
    body = '<div xml:lang="fr">mon semblable, <span xml:lang="en">my brother</span></div>'
    assert runs_of(body, ESPEAK_FRONT) == [("fr", "mon semblable"), ("en", "my brother")]


def test_espeak_speaks_a_marked_passage_with_its_own_voice() -> None:
    import numpy as np

    from ingest.segment import Run, Sentence
    from synth.engines import make_engine

    engine = make_engine("espeak")
    german = engine.synthesize([Sentence("Wind", (Run("Frisch weht der Wind", "de"),))])[0].audio
    english = engine.synthesize([Sentence("Wind", (Run("Frisch weht der Wind", "en"),))])[0].audio
    n = min(len(german), len(english))
    assert german.size and (len(german) != len(english) or not np.array_equal(german[:n], english[:n]))


def test_preview_and_make_say_what_happens_to_foreign_passages(tmp_path: Path) -> None:
    from flows.steps.spoken import foreign_note

    doc = xhtml('<h1>One</h1><p>Then <span xml:lang="de">Frisch weht der Wind</span> and '
                '<span xml:lang="sa">Datta</span> were said.</p>')
    book = read_epub(build_epub(tmp_path / "b.epub", EpubSpec(docs=[("c.xhtml", doc)], toc=[("c.xhtml", "One")])))
    assert foreign_note(book, "gpt-sovits") == ("passages in de, sa will be read in the book voice by the gpt-sovits "
                                                 "engine (Latin script as English; other scripts are skipped)")
    assert foreign_note(book, "espeak") == "espeak has no voice for sa; those passages are read in the book voice"


def test_initials_without_spaces_never_split_a_sentence() -> None:
    lines = chapter_script(Chapter("c", (Block("Written by T.S. Eliot in London."),)))
    assert len(lines) == 1


# ------------------------------------------------------------------ the book's own pronunciations

PLS = b"""<?xml version="1.0" encoding="utf-8"?>
<lexicon version="1.0" alphabet="ipa" xml:lang="en" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">
<lexeme><grapheme>Altamaha</grapheme><phoneme>\xcb\x88\xc9\x94lt\xc9\x99m\xc9\x99\xcb\x8ch\xc9\x94</phoneme></lexeme>
</lexicon>"""


def pls_book(tmp_path: Path) -> Path:
    doc = xhtml('<h1>Rivers</h1><p>The Altamaha and the <span xmlns:ssml="http://www.w3.org/2001/10/synthesis" '
                'ssml:alphabet="ipa" ssml:ph="\u02c8o\u028akmulgi">Ocmulgee</span> meet.</p>')
    spec = EpubSpec(docs=[("c.xhtml", doc)], toc=[("c.xhtml", "Rivers")], extra={"OEBPS/lexicon/en.pls": PLS})
    path = build_epub(tmp_path / "b.epub", spec)
    # declare the PLS in the manifest, as EPUB3 does
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["OEBPS/content.opf"] = members["OEBPS/content.opf"].replace(
        b"</manifest>", b'<item id="pls" href="lexicon/en.pls" media-type="application/pls+xml"/></manifest>')
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), members.pop("mimetype"))
        for name, data in members.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED)
    return path


def test_ipa_to_arpabet() -> None:
    from ingest.pronounce import ipa_to_arpabet

    assert ipa_to_arpabet("ˌæbəˈlɪʃən") == ("AE2", "B", "AH0", "L", "IH1", "SH", "AH0", "N")
    assert ipa_to_arpabet("ˈθɜrti") == ("TH", "ER1", "T", "IY0")
    assert ipa_to_arpabet("səˈvænə") == ("S", "AH0", "V", "AE1", "N", "AH0")
    assert ipa_to_arpabet("ʘ") is None  # a click: not English, left to the engine's own G2P


def test_pls_and_ssml_ph_become_lexicon_entries_for_both_engines(tmp_path: Path) -> None:
    from flows.steps.spoken import book_lexicon
    from synth.g2p import G2P
    from synth.g2p.lexicon import load_lexicon

    book = read_epub(pls_book(tmp_path))
    assert dict(book.pronunciations) == {"Altamaha": "ˈɔltəməˌhɔ", "Ocmulgee": "ˈoʊkmulgi"}
    own = tmp_path / "own.toml"
    own.write_text('[en]\n"Ocmulgee" = "OW0 K M AH1 L G IY0"\n', encoding="utf-8")  # the project's entry wins
    lexicon = load_lexicon(book_lexicon(book, own, tmp_path / "work"))
    assert lexicon.en == {"altamaha": ("AO1", "L", "T", "AH0", "M", "AH0", "HH", "AO2"),
                          "ocmulgee": ("OW0", "K", "M", "AH1", "L", "G", "IY0")}
    run = chapter_script(book.chapters[0])[1].sentence.runs[0]
    assert G2P(lexicon).run(run).phones[2:10] == ("AO1", "L", "T", "AH0", "M", "AH0", "HH", "AO2")  # after "The"
    # espeak says the entry with its own phonemes (see test_narration_settings)
    from synth.engines import make_engine

    sentence = chapter_script(book.chapters[0])[1].sentence
    plain = make_engine("espeak").synthesize([sentence])[0].audio
    said = make_engine("espeak", lexicon=tmp_path / "work" / "book-lexicon.toml").synthesize([sentence])[0].audio
    assert len(plain) != len(said) or (plain != said).any()


def test_a_book_without_pronunciations_keeps_the_project_lexicon(tmp_path: Path) -> None:
    from flows.steps.spoken import book_lexicon

    book = md_book(tmp_path, "# A\n\nText.\n")
    assert book_lexicon(book, None, tmp_path / "work") is None
    assert not (tmp_path / "work").exists()


def test_abbreviated_unit_before_a_running_sentence() -> None:
    assert normalize_en("It falls 96 ft. in less than a mile.") == "It falls ninety six feet in less than a mile."


@pytest.mark.parametrize("text", ["版本4.0发布，准确率0.85。", "It rose 0.85 points to 1,000 at 10:30."])
def test_transcripts_never_break_inside_a_number(text: str) -> None:
    from mastering.transcripts import split_text, wrap

    for chunk in split_text(text * 3, 30):
        assert "4. 0" not in chunk and "0. 85" not in chunk and "1, 000" not in chunk and "10: 30" not in chunk
    assert "0. 85" not in wrap(text) and "0.\n85" not in wrap(text)


def test_transcripts_never_break_inside_an_address() -> None:
    from mastering.transcripts import split_text, wrap

    text = "Check the show notes at our site or email us: hello@modelshop.example, or see e.g. U.S. law."
    for width in (20, 30, 42):
        for chunk in split_text(text, width):
            assert "modelshop. example" not in chunk and "e. g." not in chunk and "U. S." not in chunk
    assert "hello@modelshop.example" in wrap(text)
