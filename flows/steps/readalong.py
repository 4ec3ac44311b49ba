"""The read-along EPUB: the book with its narration as EPUB 3 Media Overlays.

Each narrated sentence is wrapped in an element with an id (ingest.overlay: nothing else in the
XHTML changes), each content document that has narration gets a SMIL file whose `<par>`s pair a
sentence (`<text src="doc.xhtml#id">`) with its stretch of the chapter's audio (`<audio src clipBegin
clipEnd>`), and the package document gets the `media-overlay` attributes, `media:duration` per
overlay and in total, and `media:active-class`. Times are the clip positions recorded in the
manifest (the same as the SRT/VTT); the audio is each delivered chapter file as AAC in the package.

An EPUB 3 source is kept as it is apart from that; a Markdown book (or an EPUB 2, which cannot carry
overlays) gets a generated EPUB 3 of its narrated text. Parts the narration skipped (front matter,
notes, a copyright page) stay in the book without overlays.
"""
from __future__ import annotations

import html
import posixpath
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from flows.steps.manifest import ChapterRecord
from ingest.errors import InputError
from ingest.model import Book
from ingest.overlay import Doc, match_sentences
from ingest.safety import safe_xml
from mastering.ffmpeg import ffmpeg_exe
from mastering.files import atomic_path

OPF_NS = "http://www.idpf.org/2007/opf"
SMIL_NS = "http://www.w3.org/ns/SMIL"
EPUB_NS = "http://www.idpf.org/2007/ops"
ACTIVE_CLASS = "-epub-media-overlay-active"
AAC_KBPS = 64


@dataclass
class Package:
    """An EPUB's files by name, its package document and the content documents in spine order."""

    files: dict[str, bytes]
    opf_name: str
    opf: etree._Element
    spine: list[str] = field(default_factory=list)  # content document names (zip paths)

    @property
    def base(self) -> str:
        return posixpath.dirname(self.opf_name)

    def item(self, name: str) -> etree._Element | None:
        for it in self.opf.iter(f"{{{OPF_NS}}}item"):
            if posixpath.normpath(posixpath.join(self.base, it.get("href", ""))) == name:
                return it
        return None

    def add_item(self, ident: str, name: str, media_type: str, data: bytes) -> None:
        manifest = self.opf.find(f"{{{OPF_NS}}}manifest")
        etree.SubElement(manifest, f"{{{OPF_NS}}}item", id=ident, href=posixpath.relpath(name, self.base or "."),
                         attrib={"media-type": media_type})
        self.files[name] = data


def epub3_package(path: Path) -> Package | None:
    """The source EPUB as a Package, or None when it is not EPUB 3 (overlays need EPUB 3)."""
    with zipfile.ZipFile(path) as zf:
        files = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    container = safe_xml(files.get("META-INF/container.xml", b""), path, "META-INF/container.xml")
    rootfile = next((el.get("full-path") for el in container.iter() if el.tag.endswith("rootfile")), None)
    if not rootfile or rootfile not in files:
        raise InputError("the EPUB has no package document", path)
    opf = safe_xml(files[rootfile], path, rootfile)
    if not opf.get("version", "").startswith("3"):
        return None
    pkg = Package(files, rootfile, opf)
    items = {it.get("id"): it for it in opf.iter(f"{{{OPF_NS}}}item")}
    for ref in opf.iter(f"{{{OPF_NS}}}itemref"):
        it = items.get(ref.get("idref"))
        if it is not None and "html" in it.get("media-type", ""):
            pkg.spine.append(posixpath.normpath(posixpath.join(pkg.base, it.get("href", ""))))
    return pkg


def generated_package(book: Book, records: list[ChapterRecord]) -> Package:
    """An EPUB 3 of the narrated text: one XHTML per chapter, paragraphs of its sentences."""
    lang = html.escape(book.meta.language or "en")
    files = {"mimetype": b"application/epub+zip",
             "META-INF/container.xml": (b'<?xml version="1.0"?><container version="1.0" '
                                        b'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                                        b'<rootfile full-path="OEBPS/content.opf" '
                                        b'media-type="application/oebps-package+xml"/></rootfiles></container>')}
    items, spine, nav = [], [], []
    for rec in records:
        name = f"chapter-{rec.index:03d}.xhtml"
        paragraphs = "\n".join(f"<p>{html.escape(text)}</p>" for text in _sentences(rec))
        files[f"OEBPS/{name}"] = (
            f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" '
            f'xmlns:epub="{EPUB_NS}" xml:lang="{lang}" lang="{lang}"><head><meta charset="utf-8"/>'
            f"<title>{html.escape(rec.title)}</title></head><body><section epub:type=\"chapter\">\n"
            f"{paragraphs}\n</section></body></html>\n").encode("utf-8")
        items.append(f'<item id="c{rec.index}" href="{name}" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="c{rec.index}"/>')
        nav.append(f'<li><a href="{name}">{html.escape(rec.title)}</a></li>')
    files["OEBPS/nav.xhtml"] = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" '
        f'xmlns:epub="{EPUB_NS}"><head><title>{html.escape(book.meta.title)}</title></head><body>'
        f'<nav epub:type="toc"><ol>{"".join(nav)}</ol></nav></body></html>\n').encode("utf-8")
    opf = (f'<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="{OPF_NS}" version="3.0" unique-identifier="uid">'
           f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="uid">bookcast:{html.escape(book.slug)}'
           f'</dc:identifier><dc:title>{html.escape(book.meta.title)}</dc:title><dc:language>{lang}</dc:language>'
           f'{f"<dc:creator>{html.escape(book.meta.author)}</dc:creator>" if book.meta.author else ""}'
           f'<meta property="dcterms:modified">2000-01-01T00:00:00Z</meta></metadata><manifest>'
           f'<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>{"".join(items)}'
           f'</manifest><spine>{"".join(spine)}</spine></package>\n').encode("utf-8")
    files["OEBPS/content.opf"] = opf
    pkg = Package(files, "OEBPS/content.opf", safe_xml(opf))
    pkg.spine = [f"OEBPS/chapter-{rec.index:03d}.xhtml" for rec in records]
    return pkg


def _sentences(rec: ChapterRecord) -> list[str]:
    return [str(s[2]) for part in (rec.parts or [rec.__dict__]) for s in part.get("spans", [])]


def clock(seconds: float) -> str:
    """SMIL clock value, milliseconds exact: H:MM:SS.mmm."""
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def build_readalong(book: Book, records: list[ChapterRecord], out: Path, path: Path, work: Path) -> dict:
    """Write `path`, the read-along EPUB of the delivered chapters in `out`; atomic. Returns what it
    holds: sentences narrated and overlaid, documents with overlays, the total duration."""
    source = Path(book.source)
    pkg = epub3_package(source) if source.suffix.lower() == ".epub" else None
    generated = pkg is None
    if pkg is None:
        pkg = generated_package(book, records)
    docs = [Doc.parse(safe_xml(pkg.files[name], source, name)) for name in pkg.spine]
    taken = set().union(*(d.ids() for d in docs)) if docs else set()
    pars: dict[int, list[tuple[str, str, float, float]]] = {}  # doc → (id, audio name, begin, end)
    audio_names: dict[str, str] = {}  # delivered file → its AAC in the package
    narrated = 0
    for rec in records:
        start = rec.index - 1 if generated else _doc_of(pkg.spine, book.chapters[rec.index - 1].source)
        lines = [(part["file"], float(s[0]), float(s[1]), str(s[2]))
                 for part in (rec.parts or [{"file": rec.file, "spans": rec.spans}]) for s in part["spans"]]
        narrated += len(lines)
        for (file, begin, end, _), found in zip(lines, match_sentences(docs, start, [t for *_, t in lines],
                                                                         f"bc{rec.index}-s", taken)):
            if found is None:
                continue
            audio = audio_names.setdefault(file, posixpath.join(pkg.base, "audio", Path(file).stem + ".m4a"))
            pars.setdefault(found[0], []).append((found[1], audio, begin, end))
    for file, name in audio_names.items():
        pkg.add_item(f"bookcast-audio-{len(pkg.files)}", name, "audio/mp4", _aac(out / file, work))
    total = 0.0
    for d, entries in sorted(pars.items()):
        docs[d].apply()
        doc_name = pkg.spine[d]
        pkg.files[doc_name] = docs[d].serialize()
        smil_name = posixpath.join(pkg.base, "mo", posixpath.basename(doc_name).rsplit(".", 1)[0] + ".smil")
        smil_id = f"mo-{d + 1}"
        pkg.add_item(smil_id, smil_name, "application/smil+xml", _smil(smil_name, doc_name, entries))
        item = pkg.item(doc_name)
        if item is not None:
            item.set("media-overlay", smil_id)
        duration = sum(end - begin for _, _, begin, end in entries)
        total += duration
        _meta(pkg, "media:duration", clock(duration), refines=f"#{smil_id}")
    _meta(pkg, "media:duration", clock(total))
    _meta(pkg, "media:active-class", ACTIVE_CLASS)
    pkg.files[pkg.opf_name] = etree.tostring(pkg.opf.getroottree(), xml_declaration=True, encoding="utf-8")
    _write_zip(path, pkg.files)
    overlaid = sum(len(e) for e in pars.values())
    return {"file": path.name, "sentences": narrated, "overlaid": overlaid, "documents": len(pars),
            "duration_s": round(total, 3), "generated": generated}


def _doc_of(spine: list[str], chapter_source: str) -> int:
    """The spine index of a chapter's first document (`Chapter.source` is 'file#anchor')."""
    file = chapter_source.split("#", 1)[0]
    for i, name in enumerate(spine):
        if name == file or name.endswith("/" + file):
            return i
    return 0


def _smil(smil_name: str, doc_name: str, entries: list[tuple[str, str, float, float]]) -> bytes:
    here = posixpath.dirname(smil_name)
    doc = posixpath.relpath(doc_name, here)
    pars = "\n".join(
        f'      <par id="par-{k}"><text src="{html.escape(doc)}#{html.escape(ident)}"/>'
        f'<audio src="{html.escape(posixpath.relpath(audio, here))}" clipBegin="{clock(begin)}" clipEnd="{clock(end)}"/>'
        f"</par>" for k, (ident, audio, begin, end) in enumerate(entries, 1))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<smil xmlns="{SMIL_NS}" xmlns:epub="{EPUB_NS}" version="3.0">\n'
            f'  <body>\n    <seq id="seq-1" epub:textref="{html.escape(doc)}">\n{pars}\n    </seq>\n  </body>\n'
            f"</smil>\n").encode("utf-8")


def _meta(pkg: Package, prop: str, value: str, refines: str | None = None) -> None:
    metadata = pkg.opf.find(f"{{{OPF_NS}}}metadata")
    el = etree.SubElement(metadata, f"{{{OPF_NS}}}meta", property=prop)
    if refines:
        el.set("refines", refines)
    el.text = value


def _aac(mp3: Path, work: Path) -> bytes:
    """A delivered chapter as AAC in MP4 (the package's audio): the same timeline, so the clip
    positions of the manifest hold (ffmpeg's edit list hides the encoder delay)."""
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f".readalong-{mp3.stem}.m4a"
    try:
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(mp3),
                        "-map", "0:a", "-c:a", "aac", "-aac_coder", "fast", "-b:a", f"{AAC_KBPS}k", "-f", "mp4",
                        str(tmp)], check=True, capture_output=True)
        return tmp.read_bytes()
    except subprocess.CalledProcessError as exc:
        raise InputError(f"ffmpeg could not encode it for the read-along EPUB: "
                         f"{exc.stderr.decode(errors='replace').strip()[-200:]}", mp3) from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_zip(path: Path, files: dict[str, bytes]) -> None:
    """An EPUB container: `mimetype` first and stored, then everything else (audio stored)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip", compress_type=zipfile.ZIP_STORED)
            for name, data in files.items():
                if name == "mimetype":
                    continue
                kind = zipfile.ZIP_STORED if name.endswith((".m4a", ".mp3", ".png", ".jpg")) else zipfile.ZIP_DEFLATED
                zf.writestr(name, data, compress_type=kind)
