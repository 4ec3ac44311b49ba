"""`bookcast make` / `rerun`: check the inputs, run the produce_book flow with progress bars, print
the summary.

Order matters for a user: everything checkable without synthesis is checked first, in this process,
before Prefect is even imported (bad input fails in moments with one line); then the local Prefect
server starts (PREFECT_API_URL unset) and the flow runs. Ctrl-C or SIGTERM stops the run within
moments with one line, leaving everything resumable. Exit status: 0 done, 1 bad input or setup,
2 some chapters failed, 3 every chapter delivered but a file breaks the preset (QC), 130 stopped.
"""
from __future__ import annotations

import argparse
import sys

from flows import runtime
from flows.steps.progress import Event, listen
from flows.steps.project import RunOptions
from ingest.errors import BookcastError


def register(sub: argparse._SubParsersAction) -> None:
    make = sub.add_parser("make", help="produce the audiobook for a project folder or an .epub/.md file; for a "
                                       "podcast project, every new or changed episode and the feed",
                          description="Produce the audiobook of a book project (or an .epub/.md file): synthesize, "
                                      "master and export every chapter, reusing what is unchanged. For a podcast "
                                      "project (project.toml with [podcast]) it does what a scheduled run does, once: "
                                      "every new or changed episode in episodes/ is produced and the feed rebuilt.")
    make.add_argument("project", help="project folder (with project.toml; a book or a podcast) or a book file")
    make.add_argument("--out", help="output folder (default ./bookcast-out/<book-slug>/)")
    make.add_argument("--chapters", help="only these chapters, e.g. 3,7-9")
    add_run_options(make)
    make.set_defaults(func=lambda a: run_make(a.project, a.out, parse_chapters(a.chapters), options_from(a)))
    rerun = sub.add_parser("rerun", help="redo just the named chapters, reusing every cached sentence")
    rerun.add_argument("project", help="project folder (with project.toml) or a book file")
    rerun.add_argument("--chapter", "--chapters", dest="chapters", required=True, help="e.g. 7 or 3,7-9")
    rerun.add_argument("--out", help="output folder of the earlier run (default as for make)")
    add_run_options(rerun)
    rerun.set_defaults(func=lambda a: run_make(a.project, a.out, parse_chapters(a.chapters),
                                               options_from(a, force_export=True)))


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="mastering preset (acx, podcast, broadcast); overrides the project")
    p.add_argument("--workers", type=int, help="synthesis worker processes (default: one per GPU, else per "
                                               "CPU core; 0 = in this process)")
    p.add_argument("--devices", help="GPU ids to use, e.g. 0,1 (default: all visible)")
    p.add_argument("--dask", dest="dask_address", help="run synthesis on a Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--m4b", action="append_const", const="m4b", dest="book_files",
                   help="also write the whole book as one M4B with chapter marks and cover")
    p.add_argument("--book-mp3", action="append_const", const="mp3", dest="book_files",
                   help="also write the whole book as one MP3 with ID3 chapter frames (CHAP/CTOC)")
    p.add_argument("--readalong", action="append_const", const="readalong", dest="book_files",
                   help="also write <slug>-readalong.epub: the book with its narration as EPUB 3 Media Overlays "
                        "(each sentence highlighted as it is read)")
    p.add_argument("--layout", choices=("flat", "audiobookshelf"), default="flat",
                   help="audiobookshelf: write into <out>/<Author>/<Title>/ (out: your library folder) with "
                        "the cover, metadata.json and an OPF that Audiobookshelf reads")


def options_from(args: argparse.Namespace, force_export: bool = False) -> RunOptions:
    return RunOptions(preset=args.preset, workers=args.workers,
                      devices=tuple(args.devices.split(",")) if args.devices else (),
                      dask_address=args.dask_address, force_export=force_export,
                      book_files=tuple(args.book_files) if args.book_files else None, layout=args.layout)


def parse_chapters(spec: str | None) -> list[int] | None:
    """'3,7-9' → [3, 7, 8, 9]. Raises BookcastError for anything else."""
    if not spec:
        return None
    out: list[int] = []
    for part in spec.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            start, end = int(lo), int(hi if dash else lo)
        except ValueError:
            raise BookcastError(f"--chapters: {part!r} is not a number or a range like 7-9") from None
        if start < 1 or end < start:
            raise BookcastError(f"--chapters: {part!r} is not a valid chapter range")
        out.extend(range(start, end + 1))
    return out


def run_make(project: str, out: str | None, chapters: list[int] | None, options: RunOptions = RunOptions()) -> int:
    from flows.steps.preflight import check_make, podcast_project

    if podcast_project(project):
        return _make_podcast(project, out, chapters, options)

    plan = check_make(project, out, chapters, options)  # before Prefect: bad input ends here
    from flows.steps.spoken import book_notes

    for notice in book_notes(plan.book, plan.project.engine):
        print(f"bookcast: note: {plan.book.source}: {notice}", file=sys.stderr)
    runtime.start_reaper()
    with runtime.stop_on_signals(), runtime.prefect_api():
        manifest = _run_flow(project, str(plan.out), chapters, options)
    if options.layout == "audiobookshelf":
        from flows.steps.layout import write_audiobookshelf

        write_audiobookshelf(plan.out, plan.book, manifest)
    print_summary(manifest)
    failed = [c for c in manifest["chapters"] if c["index"] in manifest["this_run"]["chapters"]
              and c["status"] == "failed"]
    if failed:
        names = ", ".join(f"{c['index']} ({c['title']})" for c in failed)
        first = " ".join(str(failed[0]["error"]).split())  # one line, whatever the exception said
        print(f"bookcast: error: {len(failed)} chapter(s) failed: {names}; first error: {first}; fix and run "
              f"`bookcast make {project} --chapters {','.join(str(c['index']) for c in failed)}`", file=sys.stderr)
        return 2
    broken = qc_failures(manifest)
    if broken:
        print(f"bookcast: error: delivered, but {len(broken)} file(s) break the {manifest['preset']} preset: "
              f"{'; '.join(broken)}", file=sys.stderr)
        return 3
    return 0


def _make_podcast(project: str, out: str | None, chapters: list[int] | None, options: RunOptions) -> int:
    """`make` on a podcast project: one run of what the schedule runs (new or changed episodes, then
    the feed), on the same local Prefect API as a book run."""
    from flows.podcast_cmd import print_summary
    from flows.steps.episode import podcast_settings
    from flows.steps.project import load_project

    if chapters:
        raise BookcastError("--chapters is for books; a podcast project makes every new or changed episode "
                            "(`bookcast episode PROJECT SCRIPT` makes one)", project)
    if options.preset or options.book_files or options.dask_address:
        raise BookcastError("--preset, --m4b, --book-mp3 and --dask are for books; a podcast project sets its "
                            "preset in project.toml", project)
    podcast_settings(load_project(project))  # bad settings fail here, in one line, before Prefect
    runtime.start_reaper()
    with runtime.stop_on_signals(), runtime.prefect_api():
        from flows.podcast import produce_podcast

        summary = produce_podcast(project, out_dir=out, workers=0 if options.workers is None else options.workers)
    print_summary(summary)
    return 0


def _run_flow(project: str, out: str, chapters: list[int] | None, options: RunOptions) -> dict:
    from flows.produce import dask_flow, produce_book

    stop = listen(_Bars().on_event)
    try:
        tasks_on_dask = bool(options.dask_address) and runtime.user_api_server()
        flow_fn = dask_flow(options.dask_address) if tasks_on_dask else produce_book  # type: ignore[arg-type]
        state = flow_fn(project, out, chapters, preset=options.preset, dask_tasks=tasks_on_dask,
                        workers=options.workers, devices=list(options.devices) or None,
                        dask_address=options.dask_address, force_export=options.force_export,
                        book_files=None if options.book_files is None else list(options.book_files),
                        return_state=True)
    finally:
        stop()
    manifest = state.result(raise_on_failure=False)
    if isinstance(manifest, BaseException):  # the flow itself failed (bad input, no voice, a stop ...)
        raise manifest
    return manifest


class _Bars:
    """Two honest progress bars on a terminal: sentences synthesized, and chapters mastered (with
    minutes of audio delivered) — mastering a chapter takes longer than synthesizing it with espeak,
    so one bar for both would reach the end long before the run does."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description:<10}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[note]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                                 disable=not console.is_terminal)
        self.synth = self.master = None
        self.audio_s = 0.0
        self.delivered_s = 0.0

    def on_event(self, event: Event) -> None:
        p = self.progress
        if event.kind == "plan":
            p.start()
            chapters = len((event.detail or {}).get("chapters", []))
            self.synth = p.add_task("synthesis", total=event.sentences, note="")
            self.master = p.add_task("mastering", total=chapters, note="")
        elif event.kind == "sentences" and self.synth is not None:
            self.audio_s += event.audio_s
            p.update(self.synth, advance=event.sentences, note=f"{self.audio_s / 60:.1f} min new audio")
        elif event.kind == "chapter" and event.detail and self.master is not None:
            d = event.detail
            self.delivered_s += d.get("duration_s") or 0.0
            p.update(self.master, advance=1, note=f"{self.delivered_s / 60:.1f} min delivered")
            mark = "ok" if d["status"] == "ok" else "FAILED"
            p.console.print(f"  chapter {d['index']:>2} {mark}: {d['title']}")
            if self.master is not None and p.tasks[self.master].finished:
                p.stop()


def qc_failures(manifest: dict) -> list[str]:
    """Delivered files of this run that break a preset rule, as 'file: rule value (allowed)'."""
    out = []
    for c in manifest["chapters"]:
        if c["index"] in manifest["this_run"]["chapters"] and c["status"] == "ok":
            out += [f"{c['file']}: {r['rule']} {r['value']} (allowed {r['limit']})"
                    for r in (c.get("qc") or {}).get("rules", []) if not r["passed"]]
    for kind, entry in (manifest.get("book_files") or {}).items():
        if isinstance(entry, dict) and entry.get("qc") and not entry["qc"].get("passed", True):
            out.append(f"{entry['file']}: {entry['qc'].get('detail', 'fails QC')}")
    return out


def print_summary(manifest: dict) -> None:
    print(f"{manifest['book']['title']} → {manifest['out_dir']}")
    print(f"{'#':>3}  {'duration':>8}  {'LUFS':>6}  {'RMS':>6}  {'peak':>6}  {'QC':<4}  file")
    for c in manifest["chapters"]:
        if c["status"] == "pending":
            print(f"{c['index']:>3}  {'pending':>8}  {c['title']}")
            continue
        if c["status"] != "ok":
            print(f"{c['index']:>3}  {'FAILED':>8}  {c['error']}")
            continue
        m = c["measures"]
        minutes, seconds = divmod(c["duration_s"], 60)
        qc = c.get("qc") or {}
        verdict = "pass" if qc.get("passed") else "FAIL"
        print(f"{c['index']:>3}  {int(minutes):>4d}:{seconds:04.1f}  {_db(m.get('lufs'))}  {_db(m.get('rms_db'))}  "
              f"{_db(m.get('sample_peak_db'))}  {verdict:<4}  {c['file']}"
              + (f"  (+{len(c['parts']) - 1} more part(s): too long for one file)" if c.get("parts") else ""))
        for rule in qc.get("rules", []):
            if not rule["passed"]:
                print(f"{'':>5}QC {rule['rule']}: {rule['value']} (allowed {rule['limit']})")
        for flag in c.get("clip_flags", []):
            print(f"{'':>5}clip {flag['index'] + 1}: {flag['reason']} ({flag['detail']})")
    for kind, entry in (manifest.get("book_files") or {}).items():
        if kind == "skipped":
            print(f"whole-book files not written: {entry}")
        elif isinstance(entry, dict):
            qc = entry.get("qc") or {}
            print(f"whole book ({kind}): {entry['file']}" + ("" if qc.get("passed", True) else f"  QC FAIL: {qc.get('detail')}"))
    t = manifest["total"]
    pending = f", {t['pending']} pending" if t.get("pending") else ""
    print(f"total {t['chapters']} chapters, {t['duration_s'] / 60:.1f} min, {t['failed']} failed{pending}, "
          f"{manifest['this_run']['synthesized']} sentences synthesized, {manifest['this_run']['reused']} reused; "
          f"manifest.json written")


def _db(value: float | None) -> str:
    return f"{value:6.1f}" if value is not None else "  -inf"
