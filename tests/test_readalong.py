"""The read-along EPUB (EPUB 3 Media Overlays) from an EPUB and from Markdown, checked against the rules
EPUBCheck enforces for overlays that can be checked here: well-formed SMIL, every `text src` fragment
present in its document, clip times increasing and inside the audio, durations that add up, the
package metadata; plus our own promise — the book's XHTML keeps its text and markup, only sentence
spans are added — and a browser that finds every overlay id.
"""
from __future__ import annotations

import json
import posixpath
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from flows.cli import main
from mastering.ffmpeg import probe

ROOT = Path(__file__).resolve().parents[1]
OPF = "{http://www.idpf.org/2007/opf}"
SMIL = "{http://www.w3.org/ns/SMIL}"
XHTML = "{http://www.w3.org/1999/xhtml}"
CHROMIUM = Path("/usr/bin/chromium")


def seconds(clock: str) -> float:
    h, m, s = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def check_readalong(epub: Path, tmp: Path) -> dict:
    """Every rule above; returns {document name: [overlay ids]} and the package's files."""
    with zipfile.ZipFile(epub) as zf:
        infos = zf.infolist()
        assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
        files = {i.filename: zf.read(i) for i in infos}
    container = etree.fromstring(files["META-INF/container.xml"])
    opf_name = next(el.get("full-path") for el in container.iter() if el.tag.endswith("rootfile"))
    base = posixpath.dirname(opf_name)
    opf = etree.fromstring(files[opf_name])
    assert opf.get("version").startswith("3")
    items = {it.get("id"): it for it in opf.iter(f"{OPF}item")}
    path_of = {i: posixpath.normpath(posixpath.join(base, it.get("href"))) for i, it in items.items()}
    metas = [(m.get("property"), m.get("refines"), m.text) for m in opf.iter(f"{OPF}meta")]
    assert ("media:active-class", None, "-epub-media-overlay-active") in metas
    total = next(seconds(v) for p, r, v in metas if p == "media:duration" and r is None)
    overlays: dict[str, list[str]] = {}
    summed = 0.0
    for ident, item in items.items():
        mo = item.get("media-overlay")
        if not mo:
            continue
        smil_item = items[mo]
        assert smil_item.get("media-type") == "application/smil+xml"
        smil_name = path_of[mo]
        smil = etree.fromstring(files[smil_name])  # well-formed, or this raises
        doc_name = path_of[ident]
        doc = etree.fromstring(files[doc_name])
        ids = {el.get("id") for el in doc.iter() if isinstance(el.tag, str) and el.get("id")}
        duration = next(seconds(v) for p, r, v in metas if p == "media:duration" and r == f"#{mo}")
        clips, last_end = 0.0, {}
        found = []
        for par in smil.iter(f"{SMIL}par"):
            text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
            target, fragment = text.get("src").split("#")
            assert posixpath.normpath(posixpath.join(posixpath.dirname(smil_name), target)) == doc_name
            assert fragment in ids, fragment
            found.append(fragment)
            audio_name = posixpath.normpath(posixpath.join(posixpath.dirname(smil_name), audio.get("src")))
            begin, end = seconds(audio.get("clipBegin")), seconds(audio.get("clipEnd"))
            assert 0 <= begin < end and begin >= last_end.get(audio_name, 0.0) - 1e-9, (audio_name, begin)
            last_end[audio_name] = end
            clips += end - begin
            assert audio_name in files and any(path_of[i] == audio_name and items[i].get("media-type") == "audio/mp4"
                                               for i in items)
        for audio_name, end in last_end.items():
            local = tmp / Path(audio_name).name
            local.write_bytes(files[audio_name])
            assert end <= probe(local).duration_s + 0.01, (audio_name, end)
        assert abs(clips - duration) < 0.002 * len(found) + 0.001
        summed += duration
        overlays[doc_name] = found
    assert abs(summed - total) < 0.002 * max(1, len(overlays)) + 0.001
    return {"overlays": overlays, "files": files, "opf": opf_name}


def texts_and_markup(data: bytes) -> tuple[str, list]:
    root = etree.fromstring(data)
    kept = [(el.tag, dict(el.attrib)) for el in root.iter() if isinstance(el.tag, str)
            and not (el.tag == f"{XHTML}span" and (re.match(r"bc\d+-s", el.get("id") or "")
                                                  or el.get("data-bookcast-sentence")))]
    return "".join(root.itertext()), kept


def browser_finds_every_overlay(result: dict, tmp: Path) -> None:
    """Open each overlaid document in headless Chromium and look up every overlay id."""
    if not CHROMIUM.exists():
        pytest.skip("the XML checks ran; the browser check needs Debian's chromium (apt install chromium)")
    from playwright.sync_api import sync_playwright

    folder = tmp / "unzipped"
    for name, data in result["files"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        page = browser.new_page()
        for doc, ids in result["overlays"].items():
            page.goto((folder / doc).as_uri())
            missing = page.evaluate("ids => ids.filter(id => !document.getElementById(id))", ids)
            assert ids and missing == [], (doc, missing)
        browser.close()


def make(project: Path, out: Path) -> dict:
    assert main(["make", str(project), "--out", str(out), "--readalong"]) == 0
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_readalong_from_an_epub_keeps_the_book_and_times_every_sentence(prefect_harness, tmp_path: Path) -> None:
    project = tmp_path / "sample-epub"
    shutil.copytree(ROOT / "projects" / "sample-epub", project)
    manifest = make(project, tmp_path / "out")
    entry = manifest["book_files"]["readalong"]
    assert not entry["readalong"]["generated"]
    result = check_readalong(tmp_path / "out" / entry["file"], tmp_path)
    with zipfile.ZipFile(project / "lighthouse.epub") as zf:
        original = {i.filename: zf.read(i) for i in zf.infolist()}
    for name, data in original.items():  # every original file is there; only overlaid documents changed
        if name in result["overlays"]:
            assert texts_and_markup(result["files"][name]) == texts_and_markup(data), name
        elif name != result["opf"]:
            assert result["files"][name] == data, name
    # The chapters' sentences are overlaid, apart from the spoken credits; the copyright page has none.
    spoken = [s for c in manifest["chapters"] for s in c["spans"]]
    overlaid = sum(len(v) for v in result["overlays"].values())
    assert entry["readalong"]["overlaid"] == overlaid and overlaid >= len(spoken) - 8
    assert not any("copyright" in name for name in result["overlays"])
    browser_finds_every_overlay(result, tmp_path)


def test_readalong_from_markdown_is_a_generated_epub3(prefect_harness, tmp_path: Path) -> None:
    project = tmp_path / "bilingual-sample"
    shutil.copytree(ROOT / "projects" / "bilingual-sample", project)
    manifest = make(project, tmp_path / "out")
    entry = manifest["book_files"]["readalong"]
    assert entry["readalong"]["generated"]
    result = check_readalong(tmp_path / "out" / entry["file"], tmp_path)
    spoken = [s for c in manifest["chapters"] for s in c["spans"]]
    assert sum(len(v) for v in result["overlays"].values()) == len(spoken)  # every sentence, credits too
    assert len(result["overlays"]) == len(manifest["chapters"])
    browser_finds_every_overlay(result, tmp_path)

