"""What the front end will say, printed for a producer to proofread before any GPU time is spent.

For every sentence: the source text, then each language run with its normalised text and the
GPT-SoVITS phones. `--json` prints one object per sentence instead:
{"chapter", "title", "index", "text", "runs": [{"lang", "text", "phones", "word2ph"}]}.
"""
from __future__ import annotations

import json
from typing import Iterator

from ingest.errors import InputError
from ingest.frontend import DEFAULT, FrontendConfig
from ingest.model import Book
from ingest.segment import Lang, segment
from synth.g2p import G2P, Lexicon


def book_lang(book: Book) -> Lang:
    """The default language for text without letters (digits only): the book's own."""
    return "zh" if book.meta.language.lower().startswith("zh") else "en"


def preview_lines(book: Book, chapter: int | None, as_json: bool, *, lexicon: Lexicon | None = None,
                  config: FrontendConfig = DEFAULT) -> Iterator[str]:
    """Lines of the preview of one chapter (1-based) or of the whole book.

    Raises InputError when `chapter` is out of range."""
    chapters = list(enumerate(book.chapters, 1))
    if chapter is not None:
        if not 1 <= chapter <= len(chapters):
            raise InputError(f"chapter {chapter} does not exist (the book has {len(chapters)})", book.source or None)
        chapters = [chapters[chapter - 1]]
    g2p = G2P(lexicon)
    default = book_lang(book)
    for number, chap in chapters:
        where = f"chapter {number} ({chap.title})" if chap.title else f"chapter {number}"
        if not as_json:
            yield f"== Chapter {number}: {chap.title} =="
        index = 0
        for block in chap.blocks:
            if block.kind == "section_break":
                if not as_json:
                    yield "   ---"
                continue
            for sentence in segment(block.text, default, where=where, heading=block.kind == "heading",
                                    config=config):
                index += 1
                runs = g2p.sentence(sentence)
                if as_json:
                    yield json.dumps({
                        "chapter": number, "title": chap.title, "index": index, "kind": block.kind,
                        "text": sentence.text,
                        "runs": [{"lang": r.lang, "text": r.text, "phones": list(r.phones),
                                  "word2ph": None if r.word2ph is None else list(r.word2ph)} for r in runs],
                    }, ensure_ascii=False)
                    continue
                yield f"[{index}] {sentence.text}"
                for r in runs:
                    yield f"    {r.lang} | {r.text} | {' '.join(r.phones)}"
