"""`bookcast cache stats|prune <project>`: what the clip cache holds, and dropping what the book (or
the podcast's episodes) no longer uses — clips of edited sentences, older voices."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    cache = sub.add_parser("cache", help="clip cache tools")
    csub = cache.add_subparsers(dest="cache_command", required=True)
    for name, help_text in (("stats", "entries, size and audio held"),
                            ("prune", "remove clips the current book (or episodes) and voice no longer use")):
        p = csub.add_parser(name, help=help_text)
        p.add_argument("project", help="project folder (a book or a podcast) or book file")
        p.add_argument("--out", help="output folder of the runs (default as for make)")
        p.set_defaults(func=run, action=name)


@dataclass(frozen=True)
class CacheUse:
    """A project's clip cache and what its current text would speak."""

    cache: object  # synth.cache.ClipCache
    out_dir: Path
    fingerprints: set[str]  # voices the delivered files were made with ({} before any run)
    lines: list  # every Line the current book or episodes would speak
    seed: int
    lexicon: object = None  # synth.g2p.Lexicon the runs read (its entries key clips), or None


def locate(project: str, out: str | None) -> CacheUse:
    """Where `make` (or a podcast run) keeps this project's cache, and what it would speak now."""
    from flows.steps.manifest import read_manifest
    from flows.steps.project import default_out_dir, load_project
    from flows.steps.proof import load_proof
    from flows.steps.spoken import book_lexicon, book_scripts
    from ingest.reader import read_book
    from mastering.presets import get_preset
    from synth.cache import ClipCache
    from synth.engines import engine_info

    proj = load_project(project)
    lexicon_path = proj.lexicon
    if "podcast" in proj.extra:
        from flows.steps import episode as ep
        from flows.steps.podcast_state import load_state, out_path

        settings = ep.podcast_settings(proj)
        out_dir = out_path(proj, settings, out)
        fingerprints = {r["fingerprint"] for r in load_state(out_dir).values() if r.get("fingerprint")}
        lines = [line for s in ep.scan_episodes(settings)
                 for line in ep.episode_lines(s.book, s.language, proj.engine)[0]]
    else:
        book = read_book(proj.source, proj.reading)
        out_dir = Path(out) if out else (proj.out_dir or default_out_dir(book.slug))
        engine = read_manifest(out_dir).get("engine") or {}
        fingerprints = {engine["fingerprint"]} if engine.get("fingerprint") else set()
        lexicon_path = book_lexicon(book, proj.lexicon, proj.work_dir or out_dir / ".work")
        scripts = book_scripts(book, proj.engine, get_preset(proj.preset, proj.preset_overrides),
                               list(range(1, len(book.chapters) + 1)), lexicon_path, load_proof(proj))
        lines = [line for chapter in scripts.values() for line in chapter]
    lexicon = None
    if lexicon_path is not None and engine_info(proj.engine).uses_lexicon:
        from synth.g2p.lexicon import load_lexicon

        lexicon = load_lexicon(lexicon_path)
    return CacheUse(ClipCache((proj.work_dir or out_dir / ".work") / "clips"), out_dir, fingerprints, lines,
                    proj.seed, lexicon)


def run(args: argparse.Namespace) -> int:
    from flows.steps.review import MAX_RETAKES
    from flows.steps.synthesis import retake_seed, sentence_key

    use = locate(args.project, args.out)
    cache = use.cache
    if args.action == "stats":
        s = cache.stats()  # type: ignore[attr-defined]
        print(f"{cache.root}: {s.entries} clips, {s.bytes / 1e6:.1f} MB, {s.audio_s / 3600:.2f} h of audio")  # type: ignore[attr-defined]
        return 0
    if not use.fingerprints:
        print(f"bookcast: nothing to prune: nothing was produced in {use.out_dir} yet (run it first)")
        return 1
    seeds = [retake_seed(use.seed, attempt) for attempt in range(MAX_RETAKES + 1)]
    keep = {sentence_key(line.sentence, fp, seed, use.lexicon)  # every take a run may have chosen, with the voices in use
            for line in use.lines for fp in use.fingerprints
            for seed in (seeds if line.take is None else [retake_seed(use.seed, line.take)])}
    removed = cache.prune(keep)  # type: ignore[attr-defined]
    print(f"{cache.root}: removed {removed} clips no longer used; {cache.stats().entries} kept")  # type: ignore[attr-defined]
    return 0
