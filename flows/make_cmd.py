"""`bookcast make`: run the produce_book flow with a progress bar, then print the summary."""
from __future__ import annotations

import argparse
import sys

from flows.steps.progress import Event, listen
from ingest.errors import BookcastError


def register(sub: argparse._SubParsersAction) -> None:
    make = sub.add_parser("make", help="produce the audiobook for a project folder or an .epub/.md file")
    make.add_argument("project", help="project folder (with project.toml) or a book file")
    make.add_argument("--out", help="output folder (default ./bookcast-out/<book-slug>/)")
    make.add_argument("--chapters", help="only these chapters, e.g. 3,7-9")
    add_run_options(make)
    make.set_defaults(func=lambda a: run_make(a.project, a.out, parse_chapters(a.chapters), a))
    rerun = sub.add_parser("rerun", help="redo just the named chapters, reusing every cached sentence")
    rerun.add_argument("project", help="project folder (with project.toml) or a book file")
    rerun.add_argument("--chapter", "--chapters", dest="chapters", required=True, help="e.g. 7 or 3,7-9")
    rerun.add_argument("--out", help="output folder of the earlier run (default as for make)")
    add_run_options(rerun)
    rerun.set_defaults(func=lambda a: run_make(a.project, a.out, parse_chapters(a.chapters), a, force=True))


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


def parse_chapters(spec: str | None) -> list[int] | None:
    """'3,7-9' → [3, 7, 8, 9]. Raises BookcastError for anything else."""
    if not spec:
        return None
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            start, end = int(lo), int(hi or lo)
        except ValueError:
            raise BookcastError(f"--chapters: {part!r} is not a number or a range like 7-9") from None
        if start < 1 or end < start:
            raise BookcastError(f"--chapters: {part!r} is not a valid chapter range")
        out.extend(range(start, end + 1))
    return out


def run_make(project: str, out: str | None, chapters: list[int] | None,
             options: argparse.Namespace | None = None, force: bool = False) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from flows.produce import dask_flow, produce_book

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[audio]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, transient=True, disable=not console.is_terminal)
    bar = progress.add_task("starting", total=None, audio="")
    audio = {"s": 0.0}

    def on_event(event: Event) -> None:
        if event.kind == "plan":
            progress.update(bar, description="sentences", total=event.sentences, completed=0)
        elif event.kind == "sentences":
            audio["s"] += event.audio_s
            progress.update(bar, advance=event.sentences, audio=f"{audio['s'] / 60:.1f} min audio")
        elif event.kind == "chapter" and event.detail:
            d = event.detail
            mark = "ok" if d["status"] == "ok" else "FAILED"
            progress.console.print(f"  chapter {d['index']:>2} {mark}: {d['title']}")

    stop = listen(on_event)
    try:
        with progress:
            address = getattr(options, "dask_address", None)
            tasks_on_dask = bool(address) and api_server_configured()
            flow_fn = dask_flow(address) if tasks_on_dask else produce_book
            state = flow_fn(
                project, out, chapters, preset=getattr(options, "preset", None), dask_tasks=tasks_on_dask,
                workers=getattr(options, "workers", None),
                devices=(options.devices.split(",") if getattr(options, "devices", None) else None),
                dask_address=getattr(options, "dask_address", None), force_export=force,
                book_files=getattr(options, "book_files", None), return_state=True)
    finally:
        stop()
    manifest = state.result(raise_on_failure=False)
    if isinstance(manifest, BaseException):  # the flow itself failed (bad input, no voice, ...)
        raise manifest
    print_summary(manifest)
    failed = [c for c in manifest["chapters"] if c["status"] != "ok"]
    if failed:
        names = ", ".join(f"{c['index']} ({c['title']})" for c in failed)
        first = " ".join(str(failed[0]["error"]).split())  # one line, whatever the exception said
        print(f"bookcast: error: {len(failed)} chapter(s) failed: {names}; first error: {first}; fix and run "
              f"`bookcast make {project} --chapters {','.join(str(c['index']) for c in failed)}`", file=sys.stderr)
        return 2
    return 0


def api_server_configured() -> bool:
    """True when Prefect talks to a real API server (PREFECT_API_URL), which Dask workers can reach."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def print_summary(manifest: dict) -> None:
    print(f"{manifest['book']['title']} → {manifest['out_dir']}")
    print(f"{'#':>3}  {'duration':>8}  {'LUFS':>6}  {'RMS':>6}  {'peak':>6}  {'QC':<4}  file")
    for c in manifest["chapters"]:
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
    t = manifest["total"]
    print(f"total {t['chapters']} chapters, {t['duration_s'] / 60:.1f} min, {t['failed']} failed, "
          f"{manifest['this_run']['synthesized']} sentences synthesized, {manifest['this_run']['reused']} reused; "
          f"manifest.json written")


def _db(value: float | None) -> str:
    return f"{value:6.1f}" if value is not None else "  -inf"
