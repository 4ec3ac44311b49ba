"""Engine construction by name, so callers never import heavy engines they do not use."""
from __future__ import annotations

from pathlib import Path

from ingest.errors import VoiceError
from synth.engine import Engine


def make_engine(kind: str, voice: Path | None = None, **options: object) -> Engine:
    """Build the `espeak` engine (no weights) or the `gpt-sovits` engine from a voice folder.

    Raises VoiceError for an unknown engine, a missing voice folder or a missing torch install.
    """
    if kind == "espeak":
        from synth.espeak import EspeakEngine

        return EspeakEngine()
    if kind == "gpt-sovits":
        if voice is None:
            raise VoiceError("the gpt-sovits engine needs a voice folder ([voice] path = ...)")
        try:
            from synth.gpt_sovits_engine import GptSovitsEngine
        except ImportError as exc:
            raise VoiceError(f"the gpt-sovits engine needs the extra: pip install 'bookcast[gpt-sovits]' "
                             f"({exc})") from exc
        return GptSovitsEngine.from_folder(voice, **options)  # type: ignore[attr-defined]
    raise VoiceError(f"unknown engine {kind!r}; choose espeak or gpt-sovits")
