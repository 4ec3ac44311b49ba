"""Engine construction by name, so callers never import heavy engines they do not use.

Built-in engines: `espeak` (no weights) and `gpt-sovits` (a voice folder). Code embedding bookcast
may register more with `register_engine`; registrations live in the registering process only, so use
them with in-process synthesis (`--workers 0`) or register them in every worker too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ingest.errors import VoiceError
from synth.engine import Engine

EngineFactory = Callable[[Path | None], Engine]
_custom: dict[str, EngineFactory] = {}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make `make_engine(name, voice)` call `factory(voice)`."""
    _custom[name] = factory


def known_engines() -> list[str]:
    return ["espeak", "gpt-sovits", *sorted(_custom)]


def make_engine(kind: str, voice: Path | None = None, lexicon: Path | None = None) -> Engine:
    """Build the named engine (`lexicon`: a pronunciation lexicon for engines with our G2P). Raises
    VoiceError for an unknown engine, a missing voice folder or a missing torch install."""
    if kind == "espeak":
        from synth.espeak import EspeakEngine

        return EspeakEngine()
    if kind == "gpt-sovits":
        if voice is None:
            raise VoiceError("the gpt-sovits engine needs a voice folder ([voice] path = ...)")
        try:
            from synth.gpt_sovits_engine import GptSovitsEngine
            from synth.gpt_sovits_text import default_g2p
        except ImportError as exc:
            raise VoiceError(f"the gpt-sovits engine needs the extra: pip install 'bookcast[gpt-sovits]' "
                             f"({exc})") from exc
        return GptSovitsEngine(voice, g2p=default_g2p(lexicon))
    if kind in _custom:
        return _custom[kind](voice)
    raise VoiceError(f"unknown engine {kind!r}; choose one of {', '.join(known_engines())}")
