"""Everything about a run that can be checked without synthesis, checked before Prefect starts.

Bad input (a missing or broken project file, an unreadable, DRM-locked or empty book, chapters the
book does not have, an unknown preset, an unusable voice folder, an output folder another run
holds) must be answered in moments with one line — not after a server has started and a task has
failed with a traceback. The flow checks the same things again (it can be run on its own), but
from the CLI they have already passed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flows.steps.layout import library_folder
from flows.steps.locking import probe
from flows.steps.proof import load_proof
from flows.steps.project import Project, RunOptions, default_out_dir, load_project
from ingest.errors import BookcastError, OutputError
from ingest.model import Book
from ingest.reader import read_book
from mastering.presets import Preset, get_preset
from synth.errors import VoiceError


@dataclass(frozen=True)
class MakePlan:
    project: Project
    book: Book
    preset: Preset
    wanted: list[int]
    out: Path


def check_make(project: str, out: str | None, chapters: list[int] | None, options: RunOptions) -> MakePlan:
    """Check a `make`/`rerun`; returns what was read. Raises BookcastError (InputError, VoiceError,
    MasteringError, Busy) with one line naming the file and the problem."""
    proj = load_project(project)
    preset = get_preset(options.preset or proj.preset, None if options.preset else proj.preset_overrides)
    book = read_book(proj.source, proj.reading)
    total = len(book.chapters)
    wanted = sorted(set(chapters)) if chapters else list(range(1, total + 1))
    bad = [i for i in wanted if not 1 <= i <= total]
    if bad:
        raise BookcastError(f"chapter {bad[0]} does not exist (the book has {total})", proj.source)
    check_engine(proj)
    load_proof(proj)  # a broken proof.toml is bad input too
    if options.layout == "audiobookshelf":  # `out` (or the project's) is the library: Author/Title below it
        out_dir = library_folder(Path(out) if out else (proj.out_dir or default_out_dir(book.slug).parent), book)
    else:
        out_dir = Path(out) if out else (proj.out_dir or default_out_dir(book.slug))
    check_writable(out_dir)
    probe(out_dir / ".work")
    return MakePlan(proj, book, preset, wanted, out_dir)


def podcast_project(project: str) -> bool:
    """Whether `project` is a podcast project folder (project.toml with a [podcast] table); a broken
    project.toml answers False here and is reported by the book checks."""
    try:
        return "podcast" in load_project(project).extra
    except BookcastError:
        return False


def check_writable(folder: Path) -> None:
    """The output folder exists as a writable folder, or could be created: its nearest existing
    ancestor is a writable folder. Creates nothing. Raises OutputError naming `folder`."""
    here = folder.absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        raise OutputError(f"cannot write here ({here} is not a folder)", folder)
    if not os.access(here, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write here ({here} is not writable)", folder)


def check_engine(proj: Project) -> None:
    """The project's engine exists and its voice folder is complete (files only: loading the
    weights is the workers' job). Raises VoiceError."""
    from synth.engines import engine_info, known_engines

    config = proj.root / "project.toml"
    if proj.engine not in known_engines():
        raise VoiceError(f"unknown engine {proj.engine!r}; choose one of {', '.join(known_engines())}", config)
    info = engine_info(proj.engine)
    if info.needs_voice and proj.voice is None:
        raise VoiceError(f"the {proj.engine} engine needs a voice folder ([voice] path = ...)", config)
    if info.preflight is not None:
        info.preflight(proj.voice)
