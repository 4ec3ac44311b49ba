"""Narration settings per project: espeak's rate, pitch and voice per language ([voice] in
project.toml, recorded in the manifest), and the project lexicon spoken by espeak too."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.steps.project import load_project
from flows.steps.synthesis import engine_settings, engine_spec
from ingest.errors import InputError
from ingest.segment import Run, Sentence
from synth.engines import make_engine
from synth.engines.espeak.engine import arpabet_to_espeak
from synth.jobs import engine_fingerprint


def project(tmp_path: Path, voice: str) -> Path:
    (tmp_path / "b.md").write_text("# A\n\nText.\n", encoding="utf-8")
    (tmp_path / "project.toml").write_text(f'[book]\nsource = "b.md"\n[voice]\n{voice}\n', encoding="utf-8")
    return tmp_path


def test_espeak_settings_are_read_and_recorded(tmp_path: Path) -> None:
    proj = load_project(project(tmp_path, 'engine = "espeak"\nrate = 190\npitch = 40\nvoices = {en = "en", de = "de"}'))
    spec = engine_spec(proj.engine, proj.voice, proj.lexicon, proj.voice_settings)
    assert engine_settings(spec) == {"rate": 190, "pitch": 40, "voices": {"zh": "cmn", "en": "en", "de": "de"}}
    assert engine_fingerprint(spec) != engine_fingerprint(engine_spec("espeak", None, None))  # new clips, new keys


def test_default_espeak_settings_are_recorded_too(tmp_path: Path) -> None:
    proj = load_project(project(tmp_path, 'engine = "espeak"'))
    settings = engine_settings(engine_spec(proj.engine, proj.voice, proj.lexicon, proj.voice_settings))
    assert settings == {"rate": 165, "pitch": 50, "voices": {"zh": "cmn", "en": "en-us"}}


@pytest.mark.parametrize("voice,message", [
    ("rate = 1000", "rate must be words a minute from 80 to 450, got 1000"),
    ("pitch = -3", "pitch must be a whole number from 0 to 99"),
    ('voice = "en-gb"', "espeak-ng has no voice 'en-gb' (for en); try en, en-029"),
    ('voices = {en = 3}', "voices must be a table of language"),
    ("speed = 2", "[voice] has no setting 'speed'; known: engine, path, pitch, rate, seed, voice, voices"),
])
def test_bad_settings_are_one_clear_error(tmp_path: Path, voice: str, message: str) -> None:
    with pytest.raises(InputError, match=None) as err:
        load_project(project(tmp_path, voice))
    assert message in str(err.value)


def test_rate_changes_the_clip_length() -> None:
    sentence = Sentence("The lamp burned all night long.", (Run("The lamp burned all night long.", "en"),))
    slow = make_engine("espeak", settings={"rate": 120}).synthesize([sentence])[0]
    fast = make_engine("espeak", settings={"rate": 240}).synthesize([sentence])[0]
    assert len(fast.audio) < 0.75 * len(slow.audio)


def test_project_lexicon_is_spoken_by_espeak(tmp_path: Path) -> None:
    lexicon = tmp_path / "lex.toml"
    lexicon.write_text('[en]\n"Sovits" = "S OW1 V IH0 T S"\n', encoding="utf-8")
    plain, with_lex = make_engine("espeak"), make_engine("espeak", lexicon=lexicon)
    named = Sentence("Sovits speaks.", (Run("Sovits speaks.", "en"),))
    other = Sentence("Nothing to see.", (Run("Nothing to see.", "en"),))
    a, b = plain.synthesize([named, other]), with_lex.synthesize([named, other])
    n = min(len(a[0].audio), len(b[0].audio))
    assert len(a[0].audio) != len(b[0].audio) or not np.array_equal(a[0].audio[:n], b[0].audio[:n])
    assert np.array_equal(a[1].audio, b[1].audio)  # sentences without the word are untouched


def test_arpabet_to_espeak_phonemes() -> None:
    assert arpabet_to_espeak(["S", "OW1", "V", "IH0", "T", "S"]) == "s'oUvIts"
    assert arpabet_to_espeak(["AH0", "B", "AW1", "T"]) == "@b'aUt"
    assert arpabet_to_espeak(["B", "ER1", "D", "ER0"]) == "b'3:d3"
