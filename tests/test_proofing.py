"""Proofing choices and what they change: proof.toml, per-sentence lexicon keys, espeak takes.

The studio's promise rests on these: a choice is kept in the project and applied by `make` itself; a
new pronunciation re-synthesizes only the sentences containing the word; a re-take of a
deterministic voice is still a different, reproducible take.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.steps.proof import Choice, apply_proof, read_proof, save_choice
from flows.steps.synthesis import Synthesis, engine_spec
from ingest.errors import InputError
from ingest.script import Line
from ingest.segment import segment
from synth.cache import ClipCache
from synth.g2p.lexicon import Lexicon, add_entry, load_lexicon
from synth.pool import InlinePool


def lines_of(*texts: str) -> list[Line]:
    return [Line(segment(t, "en")[0]) for t in texts]


def test_choices_round_trip_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "proof.toml"
    save_choice(path, Choice(2, 5, 'He said "hi".', take=3))
    save_choice(path, Choice(1, 1, "第一句。", text="第一句，改了。", pause_s=1.25))
    proof = save_choice(path, Choice(2, 5, 'He said "hi".', take=4))
    again = read_proof(path)
    assert again.choices == proof.choices
    assert again.choices[(2, 5)].take == 4 and again.choices[(1, 1)].text == "第一句，改了。"
    assert again.choices[(1, 1)].pause_s == 1.25
    save_choice(path, Choice(2, 5, 'He said "hi".'))  # an empty choice removes the entry
    assert list(read_proof(path).choices) == [(1, 1)]


@pytest.mark.parametrize("body, problem", [
    ("[[sentence]]\nchapter = 0\nline = 1\n", "chapter must be"),
    ("[[sentence]]\nchapter = 1\nline = 1\ntake = -1\n", "take must be"),
    ("[[sentence]]\nchapter = 1\nline = 1\npause_s = 99\n", "pause_s must be"),
    ("[[sentence]]\nchapter = 1\nline = 1\ncolour = 1\n", "unknown key"),
    ("sentence = [", "invalid TOML"),
])
def test_a_broken_proof_file_is_named(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "proof.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_proof(path)
    assert problem in str(err.value) and "proof.toml" in str(err.value)


def test_choices_apply_follow_a_moved_sentence_and_never_land_on_another(tmp_path: Path) -> None:
    path = tmp_path / "proof.toml"
    save_choice(path, Choice(1, 2, "Second one.", take=2, pause_s=2.0))
    save_choice(path, Choice(1, 3, "Third one.", text="The third, edited."))
    save_choice(path, Choice(1, 1, "Gone from the book.", take=1))
    proof = read_proof(path)
    lines = lines_of("First one.", "Inserted.", "Second one.", "Third one.")  # the book changed
    out, notes = apply_proof(1, lines, proof, lambda text: segment(text, "en"))
    assert out[2].take == 2 and out[2].pause_s == 2.0  # followed its text from line 2 to 3
    assert out[3].sentence.text == "Third one." and out[3].sentence.spoken.startswith("The third, edited")
    assert out[0] == lines[0] and out[1] == lines[1]
    assert len(notes) == 1 and "line 1" in notes[0] and "ignored" in notes[0]


def test_lexicon_entries_key_only_the_sentences_that_contain_the_word(tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon.toml"
    lexicon.write_text("# names\n[en]\n\"Ishmael\" = \"IH1 SH M EY0 L\"\n", encoding="utf-8")
    sentences = [segment(t, "en")[0] for t in ("Call me Ishmael.", "Some years ago.", "Queequeg slept.")]

    def keys() -> list[str]:
        spec = engine_spec("espeak", None, lexicon)
        synth = Synthesis(InlinePool(), spec, InlinePool().fingerprint(spec), ClipCache(tmp_path / "c"))
        return [synth.key(s) for s in sentences]

    before = keys()
    add_entry(lexicon, "Queequeg", "K W IY1 K W EH0 G")
    after = keys()
    assert before[:2] == after[:2] and before[2] != after[2]
    add_entry(lexicon, "ishmael", "IH1 SH M AH0 L")  # replaces the entry, whatever its case
    assert keys()[0] != after[0] and keys()[1:] == after[1:]
    text = lexicon.read_text(encoding="utf-8")
    assert text.startswith("# names\n[en]\n") and text.count("shmael") == 1
    assert load_lexicon(lexicon).en["queequeg"] == ("K", "W", "IY1", "K", "W", "EH0", "G")


def test_add_entry_checks_first_and_writes_tsv_and_chinese(tmp_path: Path) -> None:
    tsv = tmp_path / "lex.tsv"
    tsv.write_text("# comment\nSQL\tEH1 S K Y UW1 EH1 L\n", encoding="utf-8")
    add_entry(tsv, "sql", "S IY1 K W AH0 L")
    assert tsv.read_text(encoding="utf-8") == "# comment\nsql\tS IY1 K W AH0 L\n"
    with pytest.raises(InputError, match="lex.tsv"):
        add_entry(tsv, "word", "NOT PHONES")
    assert tsv.read_text(encoding="utf-8") == "# comment\nsql\tS IY1 K W AH0 L\n"  # unchanged
    toml = tmp_path / "new.toml"
    add_entry(toml, "曾小贤", "zeng1 xiao3 xian2")
    assert load_lexicon(toml).zh["曾小贤"] == ("zeng1", "xiao3", "xian2")
    assert Lexicon(zh={"小贤": ("xiao3", "xian2")}).entries_in(["我叫曾小贤"]) == ("zh:小贤=xiao3 xian2",)


def test_an_edited_lexicon_builds_a_fresh_engine_in_the_worker(tmp_path: Path) -> None:
    from synth.jobs import _engines, engine_for

    lexicon = tmp_path / "lexicon.toml"
    lexicon.write_text("[en]\n\"tomato\" = \"T AH0 M EY1 T OW2\"\n", encoding="utf-8")
    first = engine_spec("espeak", None, lexicon)
    engine_for(first)
    add_entry(lexicon, "potato", "P AH0 T EY1 T OW2")
    second = engine_spec("espeak", None, lexicon)
    assert second != first
    engine_for(second)
    assert second in _engines and first not in _engines  # one engine per voice, the current lexicon's


def test_espeak_takes_differ_and_repeat() -> None:
    from synth.engines.espeak.engine import EspeakEngine, take_prosody

    assert take_prosody(165, 50, 0) == (165, 50)
    assert take_prosody(165, 50, 7919) == take_prosody(165, 50, 7919) != take_prosody(165, 50, 2 * 7919)
    engine = EspeakEngine()
    sentence = segment("A re-take should sound a little different.", "en")[0]
    first, again = engine.synthesize([sentence], 0)[0], engine.synthesize([sentence], 0)[0]
    other = engine.synthesize([sentence], 7919)[0]
    assert np.array_equal(first.audio, again.audio)
    assert len(first.audio) != len(other.audio) or not np.array_equal(first.audio, other.audio)
