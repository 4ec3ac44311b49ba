"""A bookcast project: what to read, with which voice, mastered to which preset, written where.

A project is either a folder with `project.toml` or a bare .epub/.md file (all defaults). Paths in
project.toml are relative to the folder, so a project can be moved or shared as a whole.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import InputError
from ingest.reading import DEFAULT as DEFAULT_READING
from ingest.reading import Reading

EngineKind = str  # a name in the engine registry (synth.engines)


@dataclass(frozen=True)
class Project:
    root: Path
    source: Path
    engine: EngineKind = "espeak"
    voice: Path | None = None  # a GPT-SoVITS voice folder (voice.toml)
    preset: str = "acx"
    preset_overrides: dict = field(default_factory=dict)
    out_dir: Path | None = None  # None: ./bookcast-out/<book-slug>/
    work_dir: Path | None = None  # clip cache etc.; None: <out_dir>/.work
    lexicon: Path | None = None
    seed: int = 0
    title: str = ""
    book_files: tuple[str, ...] = ()  # whole-book files to add: "m4b", "mp3"
    reading: Reading = DEFAULT_READING  # [reading]: code, tables, equations, back matter, TOC depth, verse
    voice_settings: dict = field(default_factory=dict)  # the engine's own [voice] settings (espeak: rate, pitch, voices)
    extra: dict = field(default_factory=dict)  # other tables (podcast settings ...)


@dataclass(frozen=True)
class RunOptions:
    """How one `make`/`rerun` runs, beyond what the project says (command-line choices)."""

    preset: str | None = None  # overrides the project's preset (and drops its overrides)
    workers: int | None = None  # None: one per GPU, else per CPU core; 0: in this process
    devices: tuple[str, ...] = ()
    dask_address: str | None = None
    force_export: bool = False  # re-master chapters even when their inputs are unchanged
    book_files: tuple[str, ...] | None = None  # None: the project's [output] book_files
    dask_tasks: bool = False  # the flow's tasks run on the Dask cluster (prefect-dask)
    layout: str = "flat"  # "audiobookshelf": <out>/<Author>/<Title>/ with cover, metadata.json, OPF


def default_lexicon(root: Path, source: Path) -> Path:
    """Where a project keeps its pronunciation lexicon when project.toml names none (read when it
    exists; the studio creates it): `lexicon.toml` in a project folder, `<book>.lexicon.toml` beside
    a bare book file."""
    return root / "lexicon.toml" if (root / "project.toml").is_file() else source.with_name(source.stem + ".lexicon.toml")


def _if_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def default_out_dir(slug: str) -> Path:
    return Path.cwd() / "bookcast-out" / slug


def remove_leftovers(out: Path) -> None:
    """Temporary files a killed run left behind (never under a final name); call under the
    output folder's lock."""
    for stray in [*out.glob(".*.part"), *out.glob(".*.tmp"), *(out / ".work" / "clips").glob("??/.*.tmp"),
                  *(out / ".work" / "tmp").glob(".spill-*")]:
        stray.unlink(missing_ok=True)


def load_project(path: str | Path) -> Project:
    """Load a project folder or wrap a single book file. Raises InputError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_file():
        if path.name == "project.toml":
            return load_project(path.parent)
        return Project(root=path.parent, source=path, lexicon=_if_file(default_lexicon(path.parent, path)))
    config_file = path / "project.toml"
    if not config_file.exists():
        raise InputError("not a bookcast project (no project.toml) and not a book file", path)
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid TOML: {exc}", config_file) from exc
    book, voice, master, output = (_table(data, name, config_file) for name in ("book", "voice", "mastering", "output"))
    engine = str(voice.get("engine", "espeak"))
    settings = _engine_settings(engine, voice, config_file)
    for name, table in (("book", book), ("voice", {k: v for k, v in voice.items() if k not in settings}),
                        ("mastering", master), ("output", output)):
        _known_keys(name, table, config_file, _engine_setting_names(engine) if name == "voice" else ())

    def rel(value: object) -> Path | None:
        return None if not value else (path / str(value)).resolve()

    def whole(table: dict, key: str, name: str, default: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"[{name}] {key} must be a whole number, not {value!r}", config_file)
        return value

    source = rel(book.get("source"))
    if source is None and "podcast" not in data:
        raise InputError("[book] source = \"...\" is missing", config_file)
    try:
        reading = Reading.from_table(_table(data, "reading", config_file), str(config_file))
    except ValueError as exc:
        raise InputError(str(exc), config_file) from None
    return Project(
        root=path.resolve(),
        source=source or path.resolve(),
        engine=engine,  # type: ignore[arg-type]
        voice=rel(voice.get("path")),
        preset=str(master.get("preset", "acx")),
        preset_overrides=_table(master, "overrides", config_file, "mastering."),
        out_dir=rel(output.get("dir")),
        work_dir=rel(output.get("work_dir")),
        lexicon=rel(book.get("lexicon")) or _if_file(default_lexicon(path.resolve(), path.resolve())),
        seed=whole(voice, "seed", "voice", 0),
        title=str(book.get("title", "")),
        book_files=_book_files(output.get("book_files", []), config_file),
        reading=reading,
        voice_settings=settings,
        extra={k: v for k, v in data.items() if k not in ("book", "voice", "mastering", "output", "reading")},
    )


_KEYS = {"book": {"source", "lexicon", "title"}, "voice": {"engine", "path", "seed"},
         "mastering": {"preset", "overrides"}, "output": {"dir", "work_dir", "book_files"}}


def _engine_settings(engine: str, voice: dict, config_file: Path) -> dict:
    """The [voice] settings the engine takes (espeak: rate, pitch, voice, voices), checked now."""
    from synth.engines import engine_info
    from synth.errors import VoiceError

    try:
        info = engine_info(engine)
    except VoiceError:
        return {}  # an unknown engine is reported by preflight with the list of known ones
    settings = {k: v for k, v in voice.items() if k in info.settings}
    if settings and info.settings_check is not None:
        try:
            info.settings_check(settings)
        except ValueError as exc:
            raise InputError(str(exc), config_file) from None
    return settings


def _engine_setting_names(engine: str) -> tuple[str, ...]:
    from synth.engines import engine_info
    from synth.errors import VoiceError

    try:
        return engine_info(engine).settings
    except VoiceError:
        return ()


def _known_keys(name: str, table: dict, config_file: Path, more: tuple[str, ...] = ()) -> None:
    """A misspelt or misplaced setting is an error, not silently ignored (`[mastering] mp3_quality`
    belongs under `[mastering.overrides]`)."""
    unknown = sorted(set(table) - _KEYS[name])
    if not unknown:
        return
    from mastering.presets import Preset

    hint = ("; preset settings go under [mastering.overrides]" if name == "mastering"
            and unknown[0] in Preset.__dataclass_fields__ else f"; known: {', '.join(sorted({*_KEYS[name], *more}))}")
    raise InputError(f"[{name}] has no setting {unknown[0]!r}{hint}", config_file)


def _table(data: dict, name: str, config_file: Path, prefix: str = "") -> dict:
    """A [table] of project.toml (empty when absent); InputError when it is not a table."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise InputError(f"[{prefix}{name}] must be a table (a [{prefix}{name}] section), not {value!r}", config_file)
    return value


def _book_files(value: object, config_file: Path) -> tuple[str, ...]:
    kinds = [value] if isinstance(value, str) else value
    if not isinstance(kinds, list) or any(k not in ("m4b", "mp3", "readalong") for k in kinds):
        raise InputError('[output] book_files must be a list of "m4b", "mp3" and/or "readalong"', config_file)
    return tuple(kinds)
