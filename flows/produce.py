"""The `produce_book` flow: ingest → script → synthesize (workers, cache) → master + export per chapter.

Prefect tasks stay in this process (thread runner): the heavy work goes to a synthesis pool — local
worker processes or a Dask cluster — that never imports Prefect (see ../shared/PREFECT_NOTES.md: worker
processes and the ephemeral server don't mix). The flow keeps a few chapters synthesizing ahead and
masters as many at once as the memory budget allows (`steps.export.export_slots`), so the pool and
the CPU stay busy and memory stays flat whatever the book's length. Each finished chapter is recorded
in manifest.json at once; a chapter that fails after retries is recorded as failed while the others
finish and export.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.steps.book_files import book_file, length_groups
from flows.steps.mastering_pool import make_mastering_pool
from flows.steps.locking import exclusive
from flows.steps.manifest import ChapterRecord, ManifestWriter, previous_records
from flows.steps.progress import Event, report
from flows.steps.project import RunOptions, default_out_dir, load_project, remove_leftovers
from flows import runtime
from flows.steps.proof import load_proof
from flows.steps.spoken import book_lexicon, book_scripts
from flows.steps.synthesis import Synthesis, engine_settings, engine_spec
from flows.tasks import export_chapter, ingest_book, synthesize_chapter
from ingest.errors import BookcastError, Interrupted, raise_if_stopped, stop_requested
from mastering.presets import get_preset
from synth.cache import ClipCache
from synth.pool import PoolConfig, make_pool

log = logging.getLogger(__name__)

SYNTHESIS_AHEAD = 2  # chapters whose batches are queued at the pool at once (each queues all of its own)


@flow(name="produce_book", task_runner=ThreadPoolTaskRunner(max_workers=SYNTHESIS_AHEAD + 8),
      validate_parameters=False)
def produce_book(project: str, out_dir: str | None = None, chapters: list[int] | None = None,
                 preset: str | None = None, workers: int | None = None, devices: list[str] | None = None,
                 dask_address: str | None = None, force_export: bool = False,
                 book_files: list[str] | None = None, dask_tasks: bool = False) -> dict | Failed:
    """Produce (or re-produce `chapters` of) the audiobook for `project` — a project folder or an
    .epub/.md file — and return the manifest (inside a Failed state when some chapters failed, so the
    flow run ends Failed; call with `return_state=True` to read it). Reuses every cached sentence, and
    every chapter file whose inputs are unchanged unless `force_export`. `book_files` ("m4b", "mp3")
    adds whole-book files built from the chapter files (default: the project's [output] book_files).
    `dask_tasks`: this flow runs with prefect-dask's task runner on the cluster at `dask_address`, so
    each task synthesizes in-process on its Dask worker (see `dask_flow`)."""
    runtime.reclaim_sigterm()
    proj = load_project(project)
    book = ingest_book(proj.source, proj.reading)
    options = RunOptions(preset=preset, workers=workers, devices=tuple(devices or ()), dask_address=dask_address,
                         force_export=force_export, book_files=None if book_files is None else tuple(book_files),
                         dask_tasks=dask_tasks)
    mastering = get_preset(options.preset or proj.preset, None if options.preset else proj.preset_overrides)
    out = Path(out_dir) if out_dir else (proj.out_dir or default_out_dir(book.slug))
    total = len(book.chapters)
    wanted = sorted(set(chapters)) if chapters else list(range(1, total + 1))
    bad = [i for i in wanted if not 1 <= i <= total]
    if bad:
        raise BookcastError(f"chapter {bad[0]} does not exist (the book has {total})", proj.source)
    with exclusive(out / ".work"):
        remove_leftovers(out)
        return _produce(proj, book, mastering, out, wanted, options)


def dask_flow(address: str):
    """`produce_book` with prefect-dask's DaskTaskRunner on the cluster at `address`: chapter tasks
    run on the Dask workers (which keep each voice loaded between tasks) and report to the Prefect
    API themselves. Needs a real Prefect server (PREFECT_API_URL) reachable from the workers — an
    ephemeral server lives inside one process — and a filesystem shared with the workers for the
    output and cache folders. Call with `dask_tasks=True`."""
    from prefect_dask import DaskTaskRunner

    return produce_book.with_options(task_runner=DaskTaskRunner(address=address))


def _produce(proj, book, mastering, out: Path, wanted: list[int], options: RunOptions) -> dict | Failed:
    logger = get_run_logger()
    started = time.perf_counter()
    lexicon = book_lexicon(book, proj.lexicon, proj.work_dir or out / ".work")  # + the book's PLS/ssml:ph
    spec = engine_spec(proj.engine, proj.voice, lexicon, proj.voice_settings)
    placement = PoolConfig(0 if options.dask_tasks else options.workers, options.devices,
                           None if options.dask_tasks else options.dask_address)
    pool = make_pool(placement, use_gpus=spec.uses_gpu)
    masters = make_mastering_pool(in_process=placement.workers == 0)
    logger.info("synthesis on %s; mastering %d chapter(s) at a time", pool.description, masters.width)
    try:
        # The workers start and load the voice while this thread runs the front end (4 s on a
        # 20-hour book), instead of after it.
        with ThreadPoolExecutor(1, thread_name_prefix="bookcast-start") as starter:
            fingerprint = starter.submit(pool.fingerprint, spec)
            scripts = book_scripts(book, proj.engine, mastering, wanted, lexicon, load_proof(proj))
            front_end_s = time.perf_counter() - started
            fingerprint_value = fingerprint.result()
        report(Event("plan", sentences=sum(len(s) for s in scripts.values()),
                     detail={"chapters": wanted, "total": len(book.chapters)}))
        synth = Synthesis(pool, spec, fingerprint_value, ClipCache((proj.work_dir or out / ".work") / "clips"),
                          proj.seed)
        header = {"book": {"title": book.meta.title, "author": book.meta.author, "language": book.meta.language,
                           "source": str(proj.source)},
                  "engine": {"name": spec.kind, "voice": spec.voice, "fingerprint": synth.fingerprint,
                             "settings": engine_settings(spec)},
                  "preset": mastering.name, "out_dir": str(out)}
        manifest = ManifestWriter(out, book, header, wanted)
        manifest.seconds["front_end"] = round(front_end_s, 2)
        previous = previous_records(out)

        def record(index: int, result: ChapterRecord | BaseException) -> None:
            if isinstance(result, Interrupted) or isinstance(result, BaseException) and stop_requested.is_set():
                return  # not failed, only unfinished: its entry stays as it was
            if isinstance(result, BaseException):
                error = f"{type(result).__name__}: {result}"
                logger.error("chapter %d failed: %s", index, error)
                result = ChapterRecord(index=index, title=book.chapters[index - 1].title, status="failed", error=error)
            manifest.record(result)
            report(Event("chapter", chapter=index, detail=result.to_dict()))

        # quote(): Prefect walks every argument of a submit looking for futures — the whole book
        # for every chapter, 0.09 s each on a 20-hour book (O(chapters²) in all). prefect-dask
        # ships arguments to its workers without unwrapping quotes, so there they go as they are.
        q = (lambda value: value) if options.dask_tasks else quote

        def export(index: int, clips):
            return export_chapter.submit(q(book), index, q(scripts[index]), q(clips), q(synth),
                                         masters, mastering, out, q(previous.get(index)), options.force_export)

        _pipeline(wanted, lambda i: synthesize_chapter.submit(q(synth), i, q(scripts[i])), export, record,
                  masters.width)
    finally:
        pool.close(now=stop_requested.is_set())
        masters.close(now=stop_requested.is_set())
    whole = options.book_files if options.book_files is not None else proj.book_files
    whole = tuple(dict.fromkeys([*whole, *mastering.book_files]))  # a store preset's own (apple-books: m4b)
    book_files = _book_files(book, manifest, out, mastering, tuple(whole))
    manifest.seconds["wall"] = round(time.perf_counter() - started, 2)
    result = manifest.finish(book_files)
    _publish(result, book.slug)
    failed = result["this_run"]["failed"]
    if failed:  # the flow run ends Failed (visible in the UI), still carrying the manifest
        return Failed(message=f"chapter(s) {', '.join(map(str, failed))} failed; the others were delivered",
                      data=result)
    return result


def _pipeline(wanted: list[int], synthesize, export, record, export_width: int) -> None:
    """Run every wanted chapter through synthesis then export: up to SYNTHESIS_AHEAD chapters
    synthesizing and `export_width` exporting at once, started in chapter order as others finish
    (so neither the pool nor the mastering threads idle, and no thread waits for a slot). A stop
    request lets running tasks end (they stop within moments) and starts nothing new."""
    todo = deque(wanted)
    synthesizing: dict = {}  # future → chapter
    ready: deque = deque()  # (chapter, clips) waiting for an export slot
    exporting: dict = {}
    while todo or synthesizing or ready or exporting:
        stopping = stop_requested.is_set()
        while todo and len(synthesizing) < SYNTHESIS_AHEAD and not stopping:
            i = todo.popleft()
            synthesizing[synthesize(i)] = i
        while ready and len(exporting) < export_width and not stopping:
            i, clips = ready.popleft()
            exporting[export(i, clips)] = i
        running = [*synthesizing, *exporting]
        if not running:
            break  # stopping, with nothing in flight
        done = next(as_completed(running))
        if done in synthesizing:
            i = synthesizing.pop(done)
            clips = _outcome(done)
            if isinstance(clips, BaseException):
                record(i, clips)
            else:
                ready.append((i, clips))
        else:
            i = exporting.pop(done)
            record(i, _outcome(done))
    raise_if_stopped()


def _outcome(future):
    """The task's result, or the exception it ended with (whatever its type)."""
    try:
        return future.result()
    except Exception as exc:  # recorded against its chapter by the caller
        return exc


def _book_files(book, manifest: ManifestWriter, out: Path, preset, kinds: tuple[str, ...]) -> dict:
    """Whole-book files, when every chapter is delivered (a book with a hole is not a book)."""
    records = [manifest.records[i] for i in sorted(manifest.records)]
    if not kinds:
        return manifest.book_files
    if any(r.status != "ok" for r in records):
        missing = [r.index for r in records if r.status != "ok"]
        get_run_logger().warning("whole-book files skipped: chapter(s) %s not delivered", missing)
        return {**manifest.book_files, "skipped": f"chapter(s) {', '.join(map(str, missing))} not delivered"}
    previous = {k: v for k, v in manifest.book_files.items() if isinstance(v, dict)}
    files = {}
    for kind in kinds:
        groups = length_groups(records, preset.book_file_max_hours) if kind == "m4b" else [records]
        for k, group in enumerate(groups, 1):  # a store's limit per file: tracks cut between chapters
            name = kind if len(groups) == 1 else f"{kind}-part{k}"
            files[name] = book_file(book, group, out, preset, kind, previous.get(name),
                                    part=None if len(groups) == 1 else (k, len(groups)))
    return files


def _publish(manifest: dict, slug: str) -> None:
    """The per-chapter summary as a Prefect table artifact (visible in the Prefect UI)."""
    import re

    from prefect.artifacts import create_table_artifact

    rows = [{"chapter": c["index"], "title": c["title"], "status": c["status"], "file": c["file"],
             "duration_s": c["duration_s"], "lufs": c["measures"].get("lufs"), "rms_db": c["measures"].get("rms_db"),
             "peak_db": c["measures"].get("sample_peak_db"), "synthesized": c["synthesized"], "reused": c["reused"],
             "error": c["error"]} for c in manifest["chapters"]]
    key = "bookcast-" + (re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-") or "book")
    create_table_artifact(table=rows, key=key[:50], description=f"{manifest['book']['title']}: chapter summary")
    qc_rows = [{"chapter": c["index"], "file": c["file"], "verdict": "pass" if c["qc"].get("passed") else "FAIL",
                **{r["rule"]: r["value"] for r in c["qc"].get("rules", [])},
                "failed": ", ".join(r["rule"] for r in c["qc"].get("rules", []) if not r["passed"])}
               for c in manifest["chapters"] if c["status"] == "ok" and c.get("qc")]
    if qc_rows:
        create_table_artifact(table=qc_rows, key=(key[:47] + "-qc"),
                              description=f"{manifest['book']['title']}: QC against the {manifest['preset']} preset")
