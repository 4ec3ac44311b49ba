"""The `produce_book` flow: ingest → script → synthesize (workers, cache) → master + export per chapter.

Prefect tasks stay in this process (thread runner): the heavy work goes to a synthesis pool — local
worker processes or a Dask cluster — that never imports Prefect (see ../shared/PREFECT_NOTES.md: worker
processes and the ephemeral server don't mix). A chapter that fails after retries is recorded as
failed while the others finish and export; the manifest lists every chapter's status.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.steps import chapter as steps
from flows.steps.book_files import book_file
from flows.steps.locking import exclusive
from flows.steps.progress import Event, report
from flows.steps.project import Project, load_project
from flows.tasks import export_chapter, ingest_book, synthesize_chapter
from ingest.errors import BookcastError
from mastering.files import write_json_atomic
from mastering.presets import get_preset
from synth.cache import ClipCache
from synth.jobs import EngineSpec
from synth.pool import PoolConfig, make_pool

log = logging.getLogger(__name__)


def default_out_dir(slug: str) -> Path:
    return Path.cwd() / "bookcast-out" / slug


def engine_spec(proj: Project) -> EngineSpec:
    return EngineSpec(proj.engine, str(proj.voice) if proj.voice else None,
                      batch_size=16 if proj.engine == "espeak" else 8,
                      lexicon=str(proj.lexicon) if proj.lexicon else None)


@flow(name="produce_book", task_runner=ThreadPoolTaskRunner(max_workers=8), validate_parameters=False)
def produce_book(project: str, out_dir: str | None = None, chapters: list[int] | None = None,
                 preset: str | None = None, workers: int | None = None, devices: list[str] | None = None,
                 dask_address: str | None = None, force_export: bool = False,
                 book_files: list[str] | None = None, dask_tasks: bool = False) -> dict | Failed:
    """Produce (or re-produce `chapters` of) the audiobook for `project` — a project folder or an
    .epub/.md file — and return the manifest (inside a Failed state when some chapters failed, so the
    flow run ends Failed; call with `return_state=True` to read it). Reuses every cached sentence, and every chapter file
    whose inputs are unchanged unless `force_export`. `book_files` ("m4b", "mp3") adds whole-book
    files built from the chapter files (default: the project's [output] book_files). `dask_tasks`:
    this flow runs with prefect-dask's task runner on the cluster at `dask_address`, so each task
    synthesizes in-process on its Dask worker (see `dask_flow`)."""
    proj = load_project(project)
    book = ingest_book(proj.source)
    mastering = get_preset(preset or proj.preset, None if preset else proj.preset_overrides)
    out = Path(out_dir) if out_dir else (proj.out_dir or default_out_dir(book.slug))
    total = len(book.chapters)
    wanted = sorted(set(chapters)) if chapters else list(range(1, total + 1))
    bad = [i for i in wanted if not 1 <= i <= total]
    if bad:
        raise BookcastError(f"chapter {bad[0]} does not exist (the book has {total})", proj.source)
    placement = PoolConfig(0 if dask_tasks else workers, tuple(devices or ()), None if dask_tasks else dask_address)
    whole = tuple(book_files if book_files is not None else proj.book_files)
    with exclusive(out / ".work"):
        remove_leftovers(out)
        return _produce(proj, book, mastering, out, wanted, placement, force_export, whole)


def dask_flow(address: str):
    """`produce_book` with prefect-dask's DaskTaskRunner on the cluster at `address`: chapter tasks
    run on the Dask workers (which keep each voice loaded between tasks) and report to the Prefect
    API themselves. Needs a real Prefect server (PREFECT_API_URL) reachable from the workers — an
    ephemeral server lives inside one process — and a filesystem shared with the workers for the
    output and cache folders. Call with `dask_tasks=True`."""
    from prefect_dask import DaskTaskRunner

    return produce_book.with_options(task_runner=DaskTaskRunner(address=address))


def remove_leftovers(out: Path) -> None:
    """Temporary files a killed run left behind (never under a final name); safe under the lock."""
    for stray in [*out.glob(".*.part"), *out.glob(".*.tmp"), *(out / ".work" / "clips").glob("??/.*.tmp"),
                  *(out / ".work" / "tmp").glob(".spill-*")]:
        stray.unlink(missing_ok=True)


def _produce(proj: Project, book, mastering, out: Path, wanted: list[int], placement: PoolConfig,
             force_export: bool, whole: tuple[str, ...]) -> dict:
    logger = get_run_logger()
    total = len(book.chapters)
    cache = ClipCache((proj.work_dir or out / ".work") / "clips")
    spec = engine_spec(proj)
    scripts = book_scripts(proj, book, mastering, wanted)
    report(Event("plan", sentences=sum(len(s) for s in scripts.values()), detail={"chapters": wanted}))

    pool = make_pool(placement, use_gpus=spec.uses_gpu)
    logger.info("synthesis on %s", pool.description)
    try:
        fingerprint = pool.fingerprint(spec)
        previous = _previous_chapters(out)
        exports = {}
        for i in wanted:
            clips = synthesize_chapter.submit(pool, spec, fingerprint, cache, i, scripts[i], proj.seed)
            exports[i] = (clips, export_chapter.submit(book, i, total, scripts[i], clips, cache, mastering, out,
                                                       previous.get(i), force_export))
        results = [_collect(i, futures, book) for i, futures in exports.items()]
    finally:
        pool.close()
    manifest = _manifest(book, proj, mastering.name, spec, fingerprint, results, out)
    manifest["book_files"] = _book_files(book, manifest, out, mastering, whole)
    write_json_atomic(out / "manifest.json", manifest)
    write_json_atomic(out / "qc.json", {"preset": mastering.name,
                                        "chapters": [{"index": c["index"], "file": c["file"], **(c.get("qc") or {})}
                                                     for c in manifest["chapters"] if c["status"] == "ok"]})
    _publish(manifest, book.slug)
    failed = manifest["this_run"]["failed"]
    if failed:  # the flow run ends Failed (visible in the UI), still carrying the manifest
        return Failed(message=f"chapter(s) {', '.join(map(str, failed))} failed; the others were delivered",
                      data=manifest)
    return manifest


def _book_files(book, manifest: dict, out: Path, preset, kinds: tuple[str, ...]) -> dict:
    """Whole-book files, when every chapter is delivered (a book with a hole is not a book)."""
    previous = _previous_manifest(out).get("book_files") or {}
    chapters = manifest["chapters"]
    if not kinds:
        return {}
    if manifest["total"]["failed"] or len(chapters) != len(book.chapters):
        get_run_logger().warning("whole-book files skipped: not every chapter is delivered")
        return previous
    return {kind: book_file(book, chapters, out, preset, kind, previous.get(kind)) for kind in kinds}


def book_scripts(proj: Project, book, preset, wanted: list[int]) -> dict:
    """Each wanted chapter's lines as the engine will speak them (credits included when the preset
    wants them): the one definition of what gets synthesized, used by runs and by cache pruning."""
    keep = lexicon_words(proj)
    total = len(book.chapters)
    scripts = {i: steps.script(book.chapters[i - 1], book.meta.language, proj.engine, i, keep) for i in wanted}
    if preset.credits:
        scripts = {i: steps.add_credits(lines, book, i, total, proj.engine) for i, lines in scripts.items()}
    return scripts


def lexicon_words(proj: Project) -> frozenset[str]:
    """Words the project's pronunciation lexicon defines (kept verbatim by the front end)."""
    if proj.lexicon is None:
        return frozenset()
    from synth.g2p import load_lexicon

    return frozenset(load_lexicon(proj.lexicon).keep_words())


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


def _collect(index: int, futures: tuple, book) -> steps.ChapterResult:
    """The chapter's result, or a failed result carrying the first failing task's error."""
    synth, export = futures
    export.wait()
    if export.state.is_completed():
        return export.result()
    synth.wait()
    state = synth.state if not synth.state.is_completed() else export.state
    try:
        state.result(raise_on_failure=True)
        error = state.message or state.name
    except Exception as exc:  # the task's own exception, whatever its type
        error = f"{type(exc).__name__}: {exc}"
    get_run_logger().error("chapter %d failed: %s", index, error)
    result = steps.ChapterResult(index=index, title=book.chapters[index - 1].title, status="failed", error=error)
    report(Event("chapter", chapter=index, detail=result.to_dict()))
    return result


def _previous_manifest(out: Path) -> dict:
    """The manifest a previous run left in `out` (empty if none or unreadable)."""
    try:
        data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _previous_chapters(out: Path) -> dict[int, dict]:
    """Chapter entries of the previous manifest, by index."""
    try:
        return {int(c["index"]): c for c in _previous_manifest(out).get("chapters", [])}
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}


def _manifest(book, proj: Project, preset_name: str, spec: EngineSpec, fingerprint: str,
              results: list[steps.ChapterResult], out: Path) -> dict:
    """The new manifest; chapters not redone in this run keep their entries from the previous one."""
    previous = _previous_chapters(out)
    for r in results:
        previous[r.index] = r.to_dict()
    chapters = [previous[i] for i in sorted(previous) if i <= len(book.chapters)]
    return {
        "book": {"title": book.meta.title, "author": book.meta.author, "language": book.meta.language,
                 "source": str(proj.source)},
        "engine": {"name": spec.kind, "voice": spec.voice, "fingerprint": fingerprint},
        "preset": preset_name,
        "out_dir": str(out),
        "this_run": {"chapters": [r.index for r in results],
                     "synthesized": sum(r.synthesized for r in results),
                     "reused": sum(r.reused for r in results),
                     "failed": [r.index for r in results if r.status != "ok"]},
        "chapters": chapters,
        "total": {
            "chapters": len(chapters),
            "failed": sum(c["status"] != "ok" for c in chapters),
            "duration_s": round(sum(c["duration_s"] for c in chapters), 3),
            "sentences": sum(c["sentences"] for c in chapters),
            "synthesized": sum(c["synthesized"] for c in chapters),
            "reused": sum(c["reused"] for c in chapters),
            "retakes": sum(c.get("retakes", 0) for c in chapters),
        },
    }
