"""What the front end will say, printed for a producer to proofread before any GPU time is spent.

For every sentence: the source text, then each language run with its normalised text and the
GPT-SoVITS phones; then what the chapter does not read as written (code, tables, line numbers ...)
and why, and before the first chapter the documents left out of the book. `--json` prints one
object per sentence instead:
{"chapter", "title", "index", "kind" (the pause after it: sentence, paragraph, heading or
section_break), "text", "runs": [{"lang", "text", "phones", "g2p_text",
"word2ph"}]}, where a run's "text" is its normalised text and "g2p_text" the characters the
phones align to (word2ph: phones per character, Chinese runs only), and per element not read
{"chapter" (null for a whole document left out), "title", "skipped": {"what", "action" (skip or
note), "words", "excerpt", "reason"}}.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ingest.errors import InputError
from ingest.model import Book
from ingest.segment import Lang
from mastering.presets import Preset
from synth.g2p import G2P, load_lexicon

from flows.steps.coverage import reason
from flows.steps.proof import Proof
from flows.steps.spoken import book_scripts


def book_lang(book: Book) -> Lang:
    """The default language for text without letters (digits only): the book's own."""
    return "zh" if book.meta.language.lower().startswith("zh") else "en"


def preview_lines(book: Book, chapter: int | None, as_json: bool, *, engine: str = "gpt-sovits",
                  preset: Preset | None = None, lexicon: Path | None = None, proof: Proof | None = None
                  ) -> Iterator[str]:
    """Lines of the preview of one chapter (1-based) or of the whole book: exactly what `make`
    will speak with `engine` (its sentence budget, the lexicon's words, the preset's credits).

    Raises InputError when `chapter` is out of range."""
    total = len(book.chapters)
    if chapter is not None and not 1 <= chapter <= total:
        raise InputError(f"chapter {chapter} does not exist (the book has {total})", book.source or None)
    wanted = [chapter] if chapter is not None else list(range(1, total + 1))
    scripts = book_scripts(book, engine, preset, wanted, lexicon, proof)
    g2p = G2P(load_lexicon(lexicon) if lexicon is not None else None)
    if chapter is None:
        for title, skip in book.left_out:
            yield (json.dumps({"chapter": None, "title": title, "skipped": {**skip.to_dict(), "reason": reason(skip)}},
                              ensure_ascii=False) if as_json else f"(left out: {title!r} — {reason(skip)}, "
                                                                  f"{skip.words} words)")
    for number in wanted:
        chap = book.chapters[number - 1]
        if not as_json:
            yield f"== Chapter {number}: {chap.title} =="
        for index, line in enumerate(scripts[number], 1):
            sentence = line.sentence
            runs = [(run, g2p.run(run) if run.lang in ("zh", "en") else _OtherVoice(run.lang)) for run in sentence.runs]
            if as_json:
                yield json.dumps({
                    "chapter": number, "title": chap.title, "index": index, "kind": line.boundary,
                    "text": sentence.text,
                    "runs": [{"lang": run.lang, "text": run.text, "phones": list(p.phones),
                              "g2p_text": p.text, "word2ph": None if p.word2ph is None else list(p.word2ph)}
                             for run, p in runs],
                }, ensure_ascii=False)
                continue
            yield f"[{index}] {sentence.text}"
            for run, p in runs:
                yield f"    {run.lang} | {run.text} | {' '.join(p.phones)}"
            if line.boundary == "section_break":
                yield "   ---"
        for skip in chap.skipped:
            yield (json.dumps({"chapter": number, "title": chap.title, "skipped": {**skip.to_dict(), "reason": reason(skip)}},
                              ensure_ascii=False) if as_json else
                   f"   (not read: {reason(skip)}; {skip.words} words: {skip.excerpt[:50]!r})")


class _OtherVoice:
    """A run in another language (xml:lang="de", Greek): no v2 phones; espeak says it in its voice."""

    def __init__(self, lang: str) -> None:
        self.phones = (f"({lang} voice)",)
        self.text = ""
        self.word2ph = None
