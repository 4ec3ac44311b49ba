"""A chapter as a narration script: the sentences to speak, each with the boundary that follows it.

The boundary (sentence, line of verse, paragraph, section break, heading) decides the pause mastering inserts, so
the listener hears structure: a heading gets the longest breath, a sentence the shortest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ingest.frontend import DEFAULT, FrontendConfig
from ingest.model import Chapter
from ingest.segment import Lang, Sentence, segment

Boundary = Literal["sentence", "paragraph", "section_break", "heading", "line"]


@dataclass(frozen=True)
class Line:
    sentence: Sentence
    boundary: Boundary = "sentence"
    pause_s: float | None = None  # explicit pause after this line (overrides the preset)
    take: int | None = None  # a take chosen in proofing (0: the first); None: clip QC may re-take it


def chapter_script(chapter: Chapter, default_lang: Lang = "en", config: FrontendConfig = DEFAULT,
                   where: str = "") -> list[Line]:
    """Segment every block of `chapter` (sentence lengths per the engine's `config`); section breaks
    lengthen the pause after the line before. `where` names the chapter in front-end warnings."""
    where = where or f"chapter {chapter.title!r}"
    lines: list[Line] = []
    for block in chapter.blocks:
        if block.kind == "section_break":
            if lines:
                last = lines[-1]
                lines[-1] = Line(last.sentence, "section_break", block.pause_s)
            continue
        sentences = segment(block.text, default_lang, where=where, heading=block.kind == "heading", config=config)
        for i, sentence in enumerate(sentences):
            end = i == len(sentences) - 1
            boundary: Boundary = ("heading" if block.kind == "heading" else "line" if block.kind == "line"
                                  else "paragraph") if end else "sentence"
            lines.append(Line(sentence, boundary))
    return lines
