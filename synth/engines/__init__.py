"""The engine registry: a TTS engine is one folder here and one line in `_BUILTIN`.

An engine's folder holds its code, its voice folder format and its voice check, and exposes
`ENGINE: EngineInfo` — everything the rest of bookcast needs to know about it without building it:
how long a sentence it speaks reliably (the front end's length budget), where its workers go (one per
GPU or one per CPU core), whether a new seed can give a new take, how many sentences a batch holds,
whether the project lexicon changes how it speaks, and how to check a voice folder before a run.
Nothing outside an engine's folder tests an engine's name.

Engines are imported on first use (GPT-SoVITS pulls in torch). Code embedding bookcast may
`register` an engine of its own; registrations live in the registering process, so use them with
in-process synthesis (`--workers 0`) or register them in every worker too.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from ingest.frontend import FrontendConfig
from synth.engine import Engine
from synth.errors import VoiceError

# name → the module whose ENGINE describes it
_BUILTIN = {
    "espeak": "synth.engines.espeak",
    "gpt-sovits": "synth.engines.gpt_sovits",
}


@dataclass(frozen=True)
class EngineInfo:
    """What an engine is, declared by the engine itself."""

    name: str
    build: Callable[[Path | None, Path | None], Engine]  # (voice folder, lexicon) → engine; in a worker
    frontend: FrontendConfig  # sentence length budget and text rules it speaks reliably
    placement: Literal["cpu", "gpu"] = "cpu"  # workers one per GPU (when there are GPUs) or per core
    deterministic: bool = True  # the same text always sounds the same: re-takes cannot help
    batch_size: Callable[[Path | None], int] = lambda voice: 16  # sentences per batch, for this voice
    # True: cut a chapter's batches in reading order, not by length (a decoder that refills its slots)
    mixed_batches: Callable[[Path | None], bool] = lambda voice: False
    needs_voice: bool = False  # a voice folder is required ([voice] path)
    uses_lexicon: bool = False  # the project's lexicon changes pronunciations (part of the fingerprint)
    preflight: Callable[[Path | None], None] | None = None  # cheap checks before a run; raises VoiceError
    # [voice] settings the engine takes beyond engine/path/seed (espeak: rate, pitch, voices), passed
    # to `build` as keywords; `settings_check` validates them when the project is loaded (raises
    # ValueError) and returns them as the engine will use them, defaults filled in (the manifest's record).
    settings: tuple[str, ...] = ()
    settings_check: Callable[[dict], dict] | None = None
    check_voice: Callable[[Path], object] | None = None  # `bookcast voice check`: a report with .lines()/.ok

    def fingerprint(self, engine: Engine, lexicon_sha: str = "") -> str:
        """A worker's identity: the engine's own fingerprint, plus the version of the lexicon it was
        built with when this engine reads one (a worker with another lexicon must not fill the run's
        cache). Clip keys use `clip_fingerprint` of it: the lexicon enters a clip's key only through
        the entries that apply to its sentence (`Lexicon.entries_in`)."""
        fingerprint = engine.fingerprint()
        if lexicon_sha and self.uses_lexicon:
            fingerprint += _LEXICON_MARK + lexicon_sha[:16]
        return fingerprint


_LEXICON_MARK = "/lex-"


def clip_fingerprint(fingerprint: str) -> str:
    """The part of a worker's fingerprint that keys its clips: the voice, not the lexicon version."""
    return fingerprint.split(_LEXICON_MARK, 1)[0]


_registered: dict[str, EngineInfo] = {}


def register(info: EngineInfo) -> None:
    """Add (or replace) an engine for this process."""
    _registered[info.name] = info


def unregister(name: str) -> None:
    _registered.pop(name, None)


def known_engines() -> list[str]:
    return sorted({*_BUILTIN, *_registered})


def engine_info(name: str) -> EngineInfo:
    """The engine called `name`. Raises VoiceError naming the known ones."""
    if name in _registered:
        return _registered[name]
    if name in _BUILTIN:
        return importlib.import_module(_BUILTIN[name]).ENGINE
    raise VoiceError(f"unknown engine {name!r}; choose one of {', '.join(known_engines())}")


def make_engine(name: str, voice: Path | None = None, lexicon: Path | None = None,
                settings: dict | None = None) -> Engine:
    """Build the named engine (`settings`: its [voice] settings). Raises VoiceError for an unknown
    engine or a missing voice folder (and whatever the engine raises for a bad one)."""
    info = engine_info(name)
    if info.needs_voice and voice is None:
        raise VoiceError(f"the {name} engine needs a voice folder ([voice] path = ...)")
    return info.build(voice, lexicon, **settings) if settings else info.build(voice, lexicon)
