"""espeak-ng: the embedded default voice (no weights, no GPU), from the `espeakng-loader` wheel."""
from __future__ import annotations

from pathlib import Path

from ingest.frontend import FrontendConfig
from synth.engines import EngineInfo


def _build(voice: Path | None, lexicon: Path | None):
    from synth.engines.espeak.engine import EspeakEngine

    return EspeakEngine()


ENGINE = EngineInfo(
    name="espeak",
    build=_build,
    # espeak reads any length evenly; long sentences only cost a longer clip.
    frontend=FrontendConfig(max_units=400, min_units=2),
    placement="cpu",
    deterministic=True,  # a clip depends on its text only (see engine.py): re-takes cannot help
    batch_size=lambda voice: 16,
)
