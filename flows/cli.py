"""The `bookcast` command line. Logging and Prefect settings are configured here, at the entry.

Every user-facing failure is one line `bookcast: error: <file>: <problem>` and exit status 1; a run
where some chapters failed prints the summary, names the failed chapters and exits 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ingest.errors import BookcastError

log = logging.getLogger("bookcast")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bookcast", description="Books and scripts into mastered audio.")
    p.add_argument("-v", "--verbose", action="store_true", help="show Prefect and library logs")
    sub = p.add_subparsers(dest="command", required=True)

    make = sub.add_parser("make", help="produce the audiobook for a project folder or an .epub/.md file")
    make.add_argument("project", help="project folder (with project.toml) or a book file")
    make.add_argument("--out", help="output folder (default ./bookcast-out/<book-slug>/)")
    make.add_argument("--chapters", help="only these chapters, e.g. 3,7-9")

    prev = sub.add_parser("preview", help="print sentences, language runs, normalised text and phones")
    prev.add_argument("project")
    prev.add_argument("--chapter", type=int)
    prev.add_argument("--json", action="store_true", help="one JSON object per sentence")

    voice = sub.add_parser("voice", help="voice folder tools")
    vsub = voice.add_subparsers(dest="voice_command", required=True)
    check = vsub.add_parser("check", help="validate a GPT-SoVITS voice folder")
    check.add_argument("folder")
    return p


def parse_chapters(spec: str | None) -> list[int] | None:
    """'3,7-9' → [3, 7, 8, 9]."""
    if not spec:
        return None
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            start, end = int(lo), int(hi or lo)
        except ValueError:
            raise BookcastError(f"--chapters: {part!r} is not a number or range like 7-9") from None
        out.extend(range(start, end + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from flows import runtime

    runtime.configure(verbose=args.verbose)
    try:
        if args.command == "make":
            from flows.make_cmd import run_make

            return run_make(args.project, args.out, parse_chapters(args.chapters))
        if args.command == "preview":
            from flows.preview import preview_lines
            from flows.project import load_project
            from ingest.reader import read_book

            book = read_book(load_project(args.project).source)
            for line in preview_lines(book, args.chapter, args.json):
                print(line)
            return 0
        if args.command == "voice":
            from synth.voice import check_voice

            report = check_voice(Path(args.folder))
            for line in report.lines():
                print(line)
            return 0 if report.ok else 1
    except BookcastError as exc:
        print(f"bookcast: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bookcast: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
