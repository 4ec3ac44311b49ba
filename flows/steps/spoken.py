"""What is spoken: a chapter (or an episode, or the credits) as the lines the engine will say.

The one definition used by book runs, podcast episodes, preview and cache pruning: sentences cut
to the engine's length budget, words of the project's lexicon kept for it, opening and closing
credits where the preset wants them. If two places disagreed, a rerun would miss its own cache.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from flows.steps.proof import Proof, apply_proof
from ingest.frontend import FrontendConfig
from ingest.model import Book, Chapter
from ingest.script import Line, chapter_script
from ingest.segment import segment
from mastering.credits import closing_credits, opening_credits
from mastering.presets import Preset
from synth.engines import engine_info


def script(chapter: Chapter, language: str, engine: str, index: int | None = None,
           keep_words: frozenset[str] = frozenset()) -> list[Line]:
    """The chapter's lines, cut to the sentence lengths `engine` is reliable on; `keep_words` (from a
    pronunciation lexicon) are left for the lexicon instead of being normalised or spelled."""
    where = f"chapter {index} ({chapter.title})" if index else f"chapter {chapter.title!r}"
    return chapter_script(chapter, _lang(language), _config(engine, keep_words), where)


def _lang(language: str) -> str:
    return "zh" if language.startswith("zh") else "en"


def _config(engine: str, keep_words: frozenset[str]) -> FrontendConfig:
    config = engine_info(engine).frontend
    return replace(config, keep_words=frozenset(keep_words)) if keep_words else config


def edited(text: str, language: str, engine: str, keep_words: frozenset[str] = frozenset(), where: str = "") -> list:
    """What the engine says for a producer's edit of a sentence: the same front end as the book
    (normalisation, languages, the lexicon's words), as Sentences."""
    return segment(text, _lang(language), where=where or "an edited sentence", config=_config(engine, keep_words))


def add_credits(lines: list[Line], book: Book, index: int, total: int, engine: str) -> list[Line]:
    """Opening credits before chapter 1 and closing credits ("The End") after the last chapter,
    spoken from the book's metadata, as audiobook stores require."""
    meta = book.meta
    language = _lang(meta.language)
    config = _config(engine, frozenset())

    def spoken(text: str, boundary: str) -> list[Line]:
        sentences = segment(text, language, where="credits", config=config)
        return [Line(s, "sentence" if i < len(sentences) - 1 else boundary)  # type: ignore[arg-type]
                for i, s in enumerate(sentences)]

    out = list(lines)
    if index == 1:
        out = spoken(opening_credits(meta.title, meta.author, meta.narrator, language), "heading") + out
    if index == total:
        if out:
            out[-1] = replace(out[-1], boundary="section_break")
        out += spoken(closing_credits(meta.title, meta.author, meta.narrator, language), "paragraph")
    return out


def book_scripts(book: Book, engine: str, preset: Preset | None, wanted: list[int], lexicon: Path | None = None,
                 proof: Proof | None = None) -> dict[int, list[Line]]:
    """Each wanted chapter's lines as the engine will speak them (credits included when the preset
    wants them), with the producer's `proof` choices applied: what runs synthesize, what preview
    shows, what the studio lists and what cache pruning keeps."""
    keep = lexicon_words(lexicon)
    total = len(book.chapters)
    scripts = {i: script(book.chapters[i - 1], book.meta.language, engine, i, keep) for i in wanted}
    if preset is not None and preset.credits:
        scripts = {i: add_credits(lines, book, i, total, engine) for i, lines in scripts.items()}
    if proof is not None and proof.choices:
        for i, lines in scripts.items():
            scripts[i], _ = apply_proof(i, lines, proof, lambda text: edited(text, book.meta.language, engine, keep))
    return scripts


def lexicon_words(lexicon: Path | None) -> frozenset[str]:
    """Words a pronunciation lexicon defines (kept verbatim by the front end)."""
    if lexicon is None:
        return frozenset()
    from synth.g2p import load_lexicon

    return frozenset(load_lexicon(lexicon).keep_words())


def book_notes(book: Book, engine: str) -> list[str]:
    """What `make` and `preview` tell the user about this book before anything else: what the
    reader left out or could not use, and what happens to its passages in other languages."""
    note = foreign_note(book, engine)
    return [*book.notices, *([note] if note else [])]


def foreign_note(book: Book, engine: str) -> str | None:
    """What happens to passages the book marks as other languages, when the engine cannot give them
    their own voice (GPT-SoVITS: en and zh only), or when espeak has no voice for some of them."""
    from ingest.foreign import languages
    from synth.engines import engine_info

    found: set[str] = set()
    for chapter in book.chapters:
        for block in chapter.blocks:
            if "\ue000" in block.text:
                found |= languages(block.text)
    if not found:
        return None
    if not engine_info(engine).frontend.foreign_languages:
        return (f"passages in {', '.join(sorted(found))} will be read in the book voice by the {engine} engine "
                f"(Latin script as English; other scripts are skipped)")
    from synth.engines.espeak.engine import voice_for

    missing = sorted(lang for lang in found if voice_for(lang) is None)
    return (f"espeak has no voice for {', '.join(missing)}; those passages are read in the book voice"
            if missing else None)


BOOK_LEXICON = "book-lexicon.toml"


def book_lexicon(book: Book, lexicon: Path | None, folder: Path) -> Path | None:
    """The lexicon a run uses: the project's, plus the book's own pronunciations (EPUB PLS and
    ssml:ph, converted from IPA; the project's entries win), written as TOML into `folder` when the
    book has any — else the project lexicon as it is. Both engines read it (see README)."""
    if not book.pronunciations:
        return lexicon
    import json

    from ingest.pronounce import ipa_to_arpabet
    from mastering.files import write_bytes_atomic
    from synth.g2p.lexicon import Lexicon, load_lexicon

    base = load_lexicon(lexicon) if lexicon is not None else Lexicon()
    en: dict[str, tuple[str, ...]] = {}
    for word, ipa in book.pronunciations:
        phones = ipa_to_arpabet(ipa)
        if phones is not None and word.lower() not in base.en:
            en[word.lower()] = phones
    en.update(base.en)
    lines = ["# The project lexicon plus the book's own pronunciations (written by bookcast for one run)", "[en]"]
    lines += [f"{json.dumps(w, ensure_ascii=False)} = {json.dumps(' '.join(p))}" for w, p in sorted(en.items())]
    lines += ["[zh]"] + [f"{json.dumps(w, ensure_ascii=False)} = {json.dumps(' '.join(p))}"
                          for w, p in sorted(base.zh.items())]
    folder.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(folder / BOOK_LEXICON, ("\n".join(lines) + "\n").encode("utf-8"))
