"""The engine registry: engines describe themselves, and a new engine is one folder plus one line."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import soundfile as sf

from flows.cli import main
from synth import engines
from synth.errors import VoiceError
from synth.jobs import EngineSpec

TONE_ENGINE = '''
"""A test engine: each sentence is a tone whose length follows its text."""
import numpy as np

from ingest.frontend import FrontendConfig
from synth.engine import Clip
from synth.engines import EngineInfo


class ToneEngine:
    name = "tone"
    sample_rate = 16000

    def fingerprint(self):
        return "tone-1"

    def synthesize(self, sentences, seed=0):
        out = []
        for s in sentences:
            n = int(0.06 * len(s.spoken) * self.sample_rate)
            t = np.arange(n) / self.sample_rate
            out.append(Clip((0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), self.sample_rate, s.text))
        return out


ENGINE = EngineInfo(name="tone", build=lambda voice, lexicon: ToneEngine(),
                    frontend=FrontendConfig(max_units=30, min_units=2), batch_size=lambda voice: 3)
'''


def test_engines_declare_what_the_rest_of_bookcast_asks() -> None:
    espeak, gpt = engines.engine_info("espeak"), engines.engine_info("gpt-sovits")
    assert (espeak.placement, espeak.deterministic, espeak.needs_voice) == ("cpu", True, False)
    assert (gpt.placement, gpt.deterministic, gpt.needs_voice, gpt.uses_lexicon) == ("gpu", False, True, True)
    assert espeak.frontend.max_units > gpt.frontend.max_units
    assert EngineSpec("espeak").batch_size == 16 and not EngineSpec("espeak").stochastic
    with pytest.raises(VoiceError, match="needs a voice folder"):
        engines.make_engine("gpt-sovits")


def test_a_new_engine_is_one_folder_and_one_registry_line(prefect_harness, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "pkg" / "tone_engine").mkdir(parents=True)
    (tmp_path / "pkg" / "tone_engine" / "__init__.py").write_text(TONE_ENGINE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.setitem(engines._BUILTIN, "tone", "tone_engine")  # the one line
    project = tmp_path / "p"
    project.mkdir()
    (project / "book.md").write_text("# One\n\nA tone per sentence. Its length follows the text. "
                                     "Short. A longer sentence follows the short one.\n", encoding="utf-8")
    (project / "project.toml").write_text('[book]\nsource = "book.md"\n[voice]\nengine = "tone"\n'
                                          '[mastering]\npreset = "podcast"\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    audio, rate = sf.read(next(out.glob("*.mp3")))
    assert rate == 44100 and len(audio) > 2 * rate
    assert EngineSpec("tone").batch_size == 3  # its own batch size, declared once
    monkeypatch.undo()
    assert "tone" not in engines.known_engines()
    sys.modules.pop("tone_engine", None)
