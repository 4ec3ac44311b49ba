"""`bookcast cache stats|prune <project>`: what the clip cache holds, and dropping what the book no
longer uses (clips of edited sentences, older voices)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    cache = sub.add_parser("cache", help="clip cache tools")
    csub = cache.add_subparsers(dest="cache_command", required=True)
    for name, help_text in (("stats", "entries, size and audio held"),
                            ("prune", "remove clips the current book and voice no longer use")):
        p = csub.add_parser(name, help=help_text)
        p.add_argument("project", help="project folder or book file")
        p.add_argument("--out", help="output folder of the runs (default as for make)")
        p.set_defaults(func=run, action=name)


def locate(project: str, out: str | None):
    """(Project, Book, output folder, ClipCache) exactly as `make` would use them."""
    from flows.steps.project import default_out_dir
    from flows.steps.project import load_project
    from ingest.reader import read_book
    from synth.cache import ClipCache

    proj = load_project(project)
    book = read_book(proj.source)
    out_dir = Path(out) if out else (proj.out_dir or default_out_dir(book.slug))
    return proj, book, out_dir, ClipCache((proj.work_dir or out_dir / ".work") / "clips")


def run(args: argparse.Namespace) -> int:
    from flows.steps.spoken import book_scripts
    from flows.steps.review import MAX_RETAKES, retake_seed
    from mastering.presets import get_preset
    from synth.cache import clip_key

    proj, book, out_dir, cache = locate(args.project, args.out)
    if args.action == "stats":
        s = cache.stats()
        print(f"{cache.root}: {s.entries} clips, {s.bytes / 1e6:.1f} MB, {s.audio_s / 3600:.2f} h of audio")
        return 0
    manifest = out_dir / "manifest.json"
    if not manifest.exists():
        print(f"bookcast: nothing to prune: no manifest.json in {out_dir} (run `bookcast make` first)")
        return 1
    fingerprint = json.loads(manifest.read_text(encoding="utf-8"))["engine"]["fingerprint"]
    scripts = book_scripts(book, proj.engine, get_preset(proj.preset, proj.preset_overrides),
                           list(range(1, len(book.chapters) + 1)), proj.lexicon)
    seeds = [proj.seed] + [retake_seed(proj.seed, attempt) for attempt in range(1, MAX_RETAKES + 1)]
    keep = {clip_key(line.sentence, fingerprint, seed)  # every take a run may have chosen
            for lines in scripts.values() for line in lines for seed in seeds}
    removed = cache.prune(keep)
    print(f"{cache.root}: removed {removed} clips no longer used; {cache.stats().entries} kept")
    return 0
