"""The `produce_book` flow: ingest → script → synthesize chapters in parallel → master + export.

A chapter that fails (after retries) is recorded as failed while the others finish and export; the
manifest lists every chapter's status, and the flow ends Failed if any chapter did.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows import chapter as steps
from flows.progress import Event, report
from flows.project import load_project
from flows.tasks import export_chapter, ingest_book, synthesize_chapter
from ingest.errors import BookcastError, OutputError
from mastering.presets import get_preset
from synth.registry import make_engine

log = logging.getLogger(__name__)


def default_out_dir(slug: str) -> Path:
    return Path.cwd() / "bookcast-out" / slug


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON via a temp file + rename, so a reader never sees half a manifest."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path) from exc


@flow(name="produce_book", task_runner=ThreadPoolTaskRunner(max_workers=2), validate_parameters=False)
def produce_book(project: str, out_dir: str | None = None, chapters: list[int] | None = None,
                 preset: str | None = None) -> dict:
    """Produce the audiobook for `project` (a project folder or an .epub/.md file); returns the manifest."""
    logger = get_run_logger()
    proj = load_project(project)
    book = ingest_book(proj.source)
    mastering = get_preset(preset or proj.preset, proj.preset_overrides if not preset else None)
    out = Path(out_dir) if out_dir else (proj.out_dir or default_out_dir(book.slug))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder ({exc.strerror or exc})", out) from exc
    engine = make_engine(proj.engine, proj.voice)

    total = len(book.chapters)
    wanted = sorted(set(chapters)) if chapters else list(range(1, total + 1))
    bad = [i for i in wanted if not 1 <= i <= total]
    if bad:
        raise BookcastError(f"chapter {bad[0]} does not exist (the book has {total})", proj.source)
    scripts = {i: steps.script(book.chapters[i - 1], book.meta.language) for i in wanted}
    report(Event("plan", sentences=sum(len(s) for s in scripts.values()), detail={"chapters": wanted}))

    exports = {}
    for i in wanted:
        clips = synthesize_chapter.submit(engine, i, scripts[i], proj.seed)
        exports[i] = export_chapter.submit(book, i, total, scripts[i], clips, mastering, out)
    results = []
    for i, future in exports.items():
        future.wait()
        state = future.state
        if state.is_completed():
            results.append(future.result())
        else:
            error = _error_text(state)
            logger.error("chapter %d failed: %s", i, error)
            results.append(steps.ChapterResult(index=i, title=book.chapters[i - 1].title, status="failed",
                                               error=error))
            report(Event("chapter", chapter=i, detail=results[-1].to_dict()))
    manifest = _manifest(book, proj, mastering.name, engine, results, out)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _error_text(state) -> str:
    try:
        state.result(raise_on_failure=True)
    except Exception as exc:  # the task's own exception, whatever its type
        return f"{type(exc).__name__}: {exc}"
    return state.message or state.name


def _manifest(book, proj, preset_name: str, engine, results: list, out: Path) -> dict:
    return {
        "book": {"title": book.meta.title, "author": book.meta.author, "language": book.meta.language,
                 "source": str(proj.source)},
        "engine": {"name": engine.name, "fingerprint": engine.fingerprint()},
        "preset": preset_name,
        "out_dir": str(out),
        "chapters": [r.to_dict() for r in sorted(results, key=lambda r: r.index)],
        "total": {
            "chapters": len(results),
            "failed": sum(r.status != "ok" for r in results),
            "duration_s": round(sum(r.duration_s for r in results), 3),
            "sentences": sum(r.sentences for r in results),
            "synthesized": sum(r.synthesized for r in results),
            "reused": sum(r.reused for r in results),
        },
    }
