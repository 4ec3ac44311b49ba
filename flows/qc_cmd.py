"""`bookcast qc <file-or-dir> [--preset acx]`: check any existing audio files against a preset."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    qc = sub.add_parser("qc", help="check audio files (MP3, M4B, WAV, FLAC) against a delivery preset")
    qc.add_argument("path", help="a file or a folder (searched recursively)")
    qc.add_argument("--preset", default="acx", help="acx (default), podcast, broadcast, or a store: apple-books, "
                                                     "google-play")
    qc.add_argument("--json", dest="json_out", help="also write the reports to this JSON file")
    qc.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every file passes every rule, 3 when some rule failed."""
    from mastering.files import write_json_atomic
    from mastering.presets import get_preset
    from mastering.qc import audio_files, book_total_rule, format_table, qc_file

    preset = get_preset(args.preset)
    reports = [qc_file(path, preset) for path in audio_files(args.path)]
    print(format_table(reports))
    # A store's rule on the whole book: its whole-book files if the folder has some, else its chapters.
    whole = [r for r in reports if Path(r.path).suffix.lower() in (".m4b", ".m4a")]
    total = book_total_rule(whole or reports, preset) if Path(args.path).is_dir() else None
    if args.json_out:
        data = [r.to_dict() for r in reports]
        write_json_atomic(Path(args.json_out), data if total is None else {"files": data, "book": total.__dict__})
    failed = [r for r in reports if not r.passed]
    for r in failed:  # the table names a failed rule; this says by how much, as `make` does
        for rule in r.failures:
            print(f"  {Path(r.path).name}: {rule.rule} {rule.value} (allowed {rule.limit})")
    print(f"{len(reports) - len(failed)} of {len(reports)} file(s) pass the {preset.name} preset")
    if total is not None:
        print(f"book: {total.rule} {total.value} (allowed {total.limit}): {'pass' if total.passed else 'FAIL'}")
    return 3 if failed or (total is not None and not total.passed) else 0

