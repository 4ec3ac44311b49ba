"""Book structure a listener hears: which table-of-contents level makes a chapter file, chapters
that are only a heading, and the language of a book whose metadata does not say.

A 4-chapter handbook whose TOC lists every sub-section became 48 files, some under a minute; a
"Part One" page became a file of two words. Here the TOC is cut at a depth (the project's
`[reading] toc_depth`, top level by default: deeper entries are read inside their chapter), and a
chapter holding nothing but headings is merged into the next one.
"""
from __future__ import annotations

import re
from dataclasses import replace
from ingest.model import CJK, Chapter

_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str | None:
    """"zh" or "en" from the text itself (Han characters against Latin letters, on up to 20,000
    characters), or None when there is too little text to tell."""
    sample = text[:20_000]
    han, latin = len(CJK.findall(sample)), len(_LATIN.findall(sample))
    if han + latin < 20:
        return None
    # A Chinese character carries about as much as an English word of ~5 letters.
    return "zh" if han * 5 >= latin else "en"


PART_WORDS = 120  # a parent entry with no more text of its own is a title over its sub-entries


def fold_toc(chapters: list[tuple[Chapter, int]], depth: int = 0) -> list[Chapter]:
    """Chapters built from every TOC entry, each with its entry's depth (1 = top level), folded
    into the chapters a listener gets: with `depth` ≥ 1, entries deeper than it are read inside
    the chapter before them; with 0 (automatic), a sub-entry is read inside its parent when the
    parent has text of its own (a chapter and its sections), and stays a chapter when the parent
    is only a title (a part and its chapters)."""
    out: list[tuple[Chapter, int, bool]] = []  # (chapter, depth, keeps its sub-entries apart)
    for chapter, level in chapters:
        parent = next((i for i in range(len(out) - 1, -1, -1) if out[i][1] < level), None)
        if parent is not None and level > 1 and (level > depth if depth else not out[parent][2]):
            host, host_level, apart = out[-1]
            out[-1] = (_joined(host, chapter, keep=host), host_level, apart)
            continue
        own = sum(len(b.text.split()) for b in chapter.blocks if b.kind != "heading")
        out.append((chapter, level, own <= PART_WORDS))
    # A part's own few words (its title, an epigraph) open its first sub-chapter rather than
    # making a file of their own.
    return _into_next([c for c, _, _ in out],
                      [apart and k + 1 < len(out) and out[k + 1][1] > level for k, (_, level, apart) in enumerate(out)])


def merge_heading_only(chapters: list[Chapter]) -> list[Chapter]:
    """A chapter whose text is only headings ("Part One", a section title page) joins the next
    chapter as its opening; the next chapter keeps its own title. A heading-only last chapter
    is kept as it is."""
    def heading_only(chapter: Chapter) -> bool:
        texts = [b for b in chapter.blocks if b.text]
        return bool(texts) and all(b.kind == "heading" for b in texts)

    return _into_next(chapters, [heading_only(c) and i < len(chapters) - 1 for i, c in enumerate(chapters)])


def _into_next(chapters: list[Chapter], joins: list[bool]) -> list[Chapter]:
    """Each chapter marked in `joins` opens the one after it (which keeps its title); the last
    chapter is never marked."""
    out: list[Chapter] = []
    carry: Chapter | None = None
    for chapter, join in zip(chapters, joins):
        if carry is not None:
            chapter, carry = _joined(carry, chapter, keep=chapter), None
        if join:
            carry = chapter
        else:
            out.append(chapter)
    return out


def _joined(first: Chapter, second: Chapter, keep: Chapter) -> Chapter:
    """`keep`'s title and source over the blocks and skips of `first` then `second`."""
    return replace(keep, blocks=first.blocks + second.blocks, skipped=first.skipped + second.skipped)


_BARE_NUMBER = re.compile(r"^\s*(\d{1,4}|[IVXLCDM]{1,7})\.?\s*$")


def numbered_title(chapter: Chapter) -> Chapter:
    """A heading that is only a number ("191", an anthology's selection number) said alone is a
    number out of nowhere; when the chapter's title starts with it, the heading reads the title."""
    for i, block in enumerate(chapter.blocks):
        if block.kind != "heading" or not block.text:
            continue
        m = _BARE_NUMBER.match(block.text)
        rest = chapter.title[len(m.group(1)):] if m and chapter.title.startswith(m.group(1)) else ""
        if rest.strip(" .:-"):
            title = f"{m.group(1)} — {rest.strip(' .:-')}"  # type: ignore[union-attr]
            blocks = chapter.blocks[:i] + (replace(block, text=title),) + chapter.blocks[i + 1:]
            return replace(chapter, blocks=blocks)
        return chapter
    return chapter
