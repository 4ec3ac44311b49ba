"""GPT-SoVITS v2: a user's finetuned voice (GPT + SoVITS weights, BERT/HuBERT folders, reference
clips), in our own PyTorch code (`model/` knows tensors; `engine.py` joins them to voices and text).
Nothing here imports torch until an engine is built or a voice is checked."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ingest.frontend import FrontendConfig
from synth.engines import EngineInfo
from synth.errors import VoiceError


def _build(voice: Path | None, lexicon: Path | None):
    try:
        from synth.engines.gpt_sovits.engine import GptSovitsEngine
        from synth.engines.gpt_sovits.text import default_g2p
    except ImportError as exc:
        raise VoiceError(f"the gpt-sovits engine needs the extra: pip install 'bookcast[gpt-sovits]' ({exc})") from exc
    return GptSovitsEngine(voice, g2p=default_g2p(lexicon))


CONTINUOUS_FILL = 4  # sentences per slot a worker is sent at once when it decodes continuously


def _batch_size(voice: Path | None) -> int:
    """The voice's [settings] batch_size (the one size batches are cut to)."""
    from synth.engines.gpt_sovits.voice import parse_voice

    if voice is None:
        return 8
    settings = parse_voice(voice).settings
    return settings.batch_size * (CONTINUOUS_FILL if settings.continuous else 1)


def _mixed_batches(voice: Path | None) -> bool:
    """Continuous decoding gets its sentences in reading order: a worker's share then holds short
    and long ones, fed longest first, so its slots drain on short ones (bench/README.md, session 13)."""
    from synth.engines.gpt_sovits.voice import parse_voice

    return voice is not None and parse_voice(voice).settings.continuous


def _preflight(voice: Path | None) -> None:
    """Files only: the extra is installed and every file voice.toml names exists."""
    if importlib.util.find_spec("torch") is None:
        raise VoiceError("the gpt-sovits engine needs the extra: pip install 'bookcast[gpt-sovits]'", voice)
    from synth.engines.gpt_sovits.voice import load_voice

    load_voice(voice)  # type: ignore[arg-type]


def _check_voice(folder: Path):
    from synth.engines.gpt_sovits.voice_check import check_voice

    return check_voice(folder)


ENGINE = EngineInfo(
    name="gpt-sovits",
    build=_build,
    # GPT-SoVITS drifts or skips words on long inputs: about 50 Chinese characters or 25 English
    # words per sentence; "Yes." and "好的。" merge with a neighbour, "He left." stays.
    frontend=FrontendConfig(max_units=50, min_units=4),
    placement="gpu",
    deterministic=False,  # a new seed gives a new take: clip QC re-takes flagged sentences
    batch_size=_batch_size,
    mixed_batches=_mixed_batches,
    needs_voice=True,
    uses_lexicon=True,
    preflight=_preflight,
    check_voice=_check_voice,
)
