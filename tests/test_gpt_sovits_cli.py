"""The GPT-SoVITS engine through the `bookcast` CLI: a voice folder built from the tiny official-format
fixtures checks clean, speaks a sentence mixing Chinese and English, and narrates a book."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from flows.cli import main
from test_gpt_sovits_engine import _make_voice

MIXED = "今天我们用 PyTorch 训练模型。"


def test_voice_check_and_say(tmp_path: Path, aux_models, capsys) -> None:
    voice = _make_voice(tmp_path / "voice", aux_models)
    assert main(["voice", "check", str(voice)]) == 0
    report = capsys.readouterr().out
    assert "tiny-e1.ckpt" in report and "32000" in report
    out = tmp_path / "say.wav"
    assert main(["voice", "say", str(voice), MIXED, "-o", str(out), "--seed", "3"]) == 0
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 32000 and len(audio) > 0.3 * rate
    assert float(np.sqrt(np.mean(audio**2))) > 1e-3  # not silence
    again = tmp_path / "again.wav"
    assert main(["voice", "say", str(voice), MIXED, "-o", str(again), "--seed", "3"]) == 0
    assert np.array_equal(sf.read(again, dtype="float32")[0], audio)  # seeded: reproducible


def test_make_a_book_with_a_gpt_sovits_voice(prefect_harness, tmp_path: Path, aux_models) -> None:
    voice = _make_voice(tmp_path / "voice", aux_models)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "book.md").write_text(f"# 第一章\n\n{MIXED}今天天气真好。\n", encoding="utf-8")
    (project / "project.toml").write_text(
        f'[book]\nsource = "book.md"\n[voice]\nengine = "gpt-sovits"\npath = "{voice}"\n'
        f'[mastering]\npreset = "podcast"\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    files = list(out.glob("*.mp3"))
    assert len(files) == 1
    audio, rate = sf.read(files[0], dtype="float32", always_2d=True)
    assert rate == 44100 and audio.shape[0] > rate
