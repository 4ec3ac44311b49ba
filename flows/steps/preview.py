"""What the front end will say, printed for a producer to proofread before any GPU time is spent.

For every sentence: the source text, then each language run with its normalised text and the
GPT-SoVITS phones. `--json` prints one object per sentence instead:
{"chapter", "title", "index", "kind", "text", "runs": [{"lang", "text", "phones", "g2p_text",
"word2ph"}]}, where a run's "text" is its normalised text and "g2p_text" the characters the
phones align to (word2ph: phones per character, Chinese runs only).
"""
from __future__ import annotations

import json
from dataclasses import replace
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
    if lexicon is not None:
        config = replace(config, keep_words=config.keep_words | lexicon.keep_words())
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
                runs = [(run, g2p.run(run)) for run in sentence.runs]
                if as_json:
                    yield json.dumps({
                        "chapter": number, "title": chap.title, "index": index, "kind": block.kind,
                        "text": sentence.text,
                        "runs": [{"lang": run.lang, "text": run.text, "phones": list(p.phones),
                                  "g2p_text": p.text, "word2ph": None if p.word2ph is None else list(p.word2ph)}
                                 for run, p in runs],
                    }, ensure_ascii=False)
                    continue
                yield f"[{index}] {sentence.text}"
                for run, p in runs:
                    yield f"    {run.lang} | {run.text} | {' '.join(p.phones)}"
