"""espeak-ng: the embedded default voice (no weights, no GPU), from the `espeakng-loader` wheel."""
from __future__ import annotations

import functools
from pathlib import Path

from ingest.frontend import FrontendConfig
from synth.engines import EngineInfo


def _build(folder: Path | None, lexicon: Path | None, **settings):
    from synth.engines.espeak.engine import EspeakEngine

    lex = None
    if lexicon is not None:
        from synth.g2p.lexicon import load_lexicon

        lex = load_lexicon(lexicon)
    return EspeakEngine(config(settings), lex)


def config(settings: dict):
    """The EspeakConfig a project's [voice] settings ask for: `rate` (words a minute, 80-450),
    `pitch` (0-99), `voices` (language → espeak voice name, e.g. {en = "en-gb"}) or `voice` (the
    English voice). Raises ValueError naming the bad setting."""
    from synth.engines.espeak.engine import EspeakConfig

    base = EspeakConfig()
    rate, pitch = settings.get("rate", base.rate), settings.get("pitch", base.pitch)
    if isinstance(rate, bool) or not isinstance(rate, int) or not 80 <= rate <= 450:
        raise ValueError(f"[voice] rate must be words a minute from 80 to 450, got {rate!r}")
    if isinstance(pitch, bool) or not isinstance(pitch, int) or not 0 <= pitch <= 99:
        raise ValueError(f"[voice] pitch must be a whole number from 0 to 99, got {pitch!r}")
    voices = dict(base.voices)
    if "voice" in settings:
        voices["en"] = settings["voice"]
    extra = settings.get("voices", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) and v for v in extra.values()):
        raise ValueError('[voice] voices must be a table of language = "espeak voice", e.g. {en = "en-gb"}')
    voices.update(extra)
    known = available_voices()
    for lang, name in voices.items():
        if known and name.lower() not in known:
            close = sorted(v for v in known if v.split("-")[0] == name.lower().split("-")[0])
            raise ValueError(f"[voice] espeak-ng has no voice {name!r} (for {lang}); "
                             + (f"try {', '.join(close[:6])}" if close else "see espeak-ng's language list"))
    return EspeakConfig(voices=tuple(voices.items()), rate=rate, pitch=pitch)


@functools.lru_cache(maxsize=1)
def available_voices() -> frozenset[str]:
    """espeak-ng's voice names in the wheel's data (lower case: en, en-us, de, la, grc, cmn ...)."""
    try:
        import espeakng_loader

        root = Path(espeakng_loader.get_data_path()) / "lang"
    except Exception:  # noqa: BLE001 — without the wheel's data nothing can be checked here
        return frozenset()
    return frozenset(p.name.lower() for p in root.rglob("*") if p.is_file())


def _check(settings: dict) -> dict:
    cfg = config(settings)
    return {"rate": cfg.rate, "pitch": cfg.pitch, "voices": dict(cfg.voices)}


ENGINE = EngineInfo(
    name="espeak",
    build=_build,
    # espeak reads any length evenly; long sentences only cost a longer clip.
    frontend=FrontendConfig(max_units=400, min_units=2, foreign_languages=True),  # every espeak voice
    placement="cpu",
    deterministic=True,  # a clip depends on its text only (see engine.py): re-takes cannot help
    batch_size=lambda voice: 16,
    uses_lexicon=True,  # English entries are spoken as espeak phonemes (see engine.py)
    settings=("rate", "pitch", "voice", "voices"),
    settings_check=_check,
)
