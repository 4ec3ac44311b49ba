"""The embedded espeak-ng voice speaks zh and en runs, inside one sentence, in one clip."""
from __future__ import annotations

import numpy as np

from ingest.segment import Run, Sentence
from synth.engine import Engine
from synth.engines.espeak.engine import EspeakEngine


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_espeak_speaks_chinese_english_and_mixed() -> None:
    engine = EspeakEngine()
    assert isinstance(engine, Engine)
    zh = Sentence("你好，世界。", (Run("你好，世界。", "zh"),))
    en = Sentence("Hello world.", (Run("Hello world.", "en"),))
    mixed = Sentence("我们用 PyTorch 训练模型。", (Run("我们用", "zh"), Run("PyTorch", "en"), Run("训练模型。", "zh")))
    clips = engine.synthesize([zh, en, mixed])
    assert [c.sample_rate for c in clips] == [engine.sample_rate] * 3
    for clip in clips:
        assert clip.audio.dtype == np.float32 and clip.duration > 0.3
        assert rms(clip.audio) > 0.01 and np.abs(clip.audio).max() <= 1.0
    # the mixed clip holds three runs: longer than the zh part alone
    assert clips[2].duration > engine.synthesize([Sentence("我们用", (Run("我们用", "zh"),))])[0].duration


def test_mandarin_voice_differs_from_english_voice() -> None:
    engine = EspeakEngine()
    text = "ma ma"
    a = engine.synthesize([Sentence(text, (Run(text, "en"),))])[0].audio
    b = engine.synthesize([Sentence(text, (Run(text, "zh"),))])[0].audio
    assert len(a) != len(b) or not np.allclose(a, b)


def test_deterministic_and_fingerprinted() -> None:
    engine = EspeakEngine()
    s = Sentence("Same text.", (Run("Same text.", "en"),))
    assert np.array_equal(engine.synthesize([s])[0].audio, engine.synthesize([s])[0].audio)
    assert len(engine.fingerprint()) == 16
