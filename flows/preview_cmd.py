"""`bookcast preview`: proofread the front end's output before spending GPU hours."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    prev = sub.add_parser("preview", help="print sentences, language runs, normalised text and phones")
    prev.add_argument("project", help="project folder or book file")
    prev.add_argument("--chapter", type=int, help="only this chapter (1-based)")
    prev.add_argument("--json", action="store_true", help="one JSON object per sentence (and per element not read)")
    prev.add_argument("--coverage", action="store_true",
                      help="per chapter, the share of source words spoken, replaced by a note and skipped (by reason)")
    prev.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flows.steps.preview import preview_lines
    from flows.steps.project import load_project
    from ingest.reader import read_book
    from mastering.presets import get_preset

    proj = load_project(args.project)
    book = read_book(proj.source, proj.reading)
    preset = get_preset(proj.preset, proj.preset_overrides)
    from flows.steps.spoken import book_notes

    for notice in book_notes(book, proj.engine):  # on stderr, so --json output stays one kind
        print(f"bookcast: note: {book.source}: {notice}", file=sys.stderr)
    if args.coverage:
        import json

        from flows.steps.coverage import book_coverage, coverage_lines

        print(json.dumps(book_coverage(book), ensure_ascii=False) if args.json else "\n".join(coverage_lines(book)))
        return 0
    import tempfile

    from flows.steps.proof import load_proof
    from flows.steps.spoken import book_lexicon

    with tempfile.TemporaryDirectory(prefix="bookcast-preview-") as tmp:  # the book's PLS/ssml:ph, if any
        lexicon = book_lexicon(book, proj.lexicon, Path(tmp))
        for line in preview_lines(book, args.chapter, args.json, engine=proj.engine, preset=preset,
                                  lexicon=lexicon, proof=load_proof(proj)):
            print(line)
    return 0
