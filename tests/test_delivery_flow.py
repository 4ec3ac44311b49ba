"""Delivery through the flow: per-chapter QC, transcripts timed from clip positions, credits,
whole-book M4B/MP3 whose chapter marks read back equal to the manifest, clip-QC re-takes, `bookcast qc`."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from flows.cli import main
from mastering.ffmpeg import probe
from mastering.transcripts import parse_times
from synth import engines
from synth.engine import Clip
from synth.engines.espeak.engine import EspeakEngine

ROOT = Path(__file__).resolve().parents[1]
EPUB_PROJECT = ROOT / "projects" / "sample-epub"


@pytest.fixture(scope="module")
def delivered(prefect_harness, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("delivered")
    assert main(["make", str(EPUB_PROJECT), "--out", str(out), "--m4b", "--book-mp3", "--workers", "0"]) == 0
    return out


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_every_chapter_passes_qc_and_qc_json_is_written(delivered: Path) -> None:
    m = manifest(delivered)
    for chapter in m["chapters"]:
        assert chapter["qc"]["passed"], chapter["qc"]
        rules = {r["rule"] for r in chapter["qc"]["rules"]}
        assert {"rms_db", "sample_peak_db", "noise_floor_db", "head_room_tone_s", "tail_room_tone_s",
                "mp3_cbr_kbps"} <= rules
    qc = json.loads((delivered / "qc.json").read_text(encoding="utf-8"))
    assert qc["preset"] == "acx" and len(qc["chapters"]) == 3


def test_transcripts_follow_clip_positions(delivered: Path) -> None:
    for chapter in manifest(delivered)["chapters"]:
        stem = Path(chapter["file"]).stem
        starts = [s for s, _, _ in chapter["spans"]]
        ends = [e for _, e, _ in chapter["spans"]]
        for suffix in (".srt", ".vtt"):
            times = parse_times((delivered / f"{stem}{suffix}").read_text(encoding="utf-8"))
            assert times, suffix
            # every sentence starts a cue at its clip's start; the last cue ends at the last clip's end
            cue_starts = [s for s, _ in times]
            for s in starts:
                assert min(abs(s - c) for c in cue_starts) <= 0.010
            assert abs(times[-1][1] - ends[-1]) <= 0.010


def test_credits_open_and_close_the_book(delivered: Path) -> None:
    chapters = manifest(delivered)["chapters"]
    assert chapters[0]["spans"][0][2] == "The Lighthouse Keeper."
    assert chapters[-1]["spans"][-1][2] == "The End."


def test_whole_book_files_have_chapter_marks_equal_to_the_manifest(delivered: Path) -> None:
    m = manifest(delivered)
    for kind in ("m4b", "mp3"):
        entry = m["book_files"][kind]
        info = probe(delivered / entry["file"])
        assert [c.title for c in info.chapters] == [c["title"] for c in m["chapters"]]
        for read, written in zip(info.chapters, entry["chapters"]):
            assert abs(read.start_s - written["start_s"]) <= 0.002
            assert abs(read.end_s - written["end_s"]) <= 0.002
        durations = [c["duration_s"] for c in m["chapters"]]
        assert abs(entry["chapters"][-1]["end_s"] - sum(durations)) <= 0.05
    assert probe(delivered / m["book_files"]["m4b"]["file"]).has_cover


def test_qc_command_passes_delivered_files_and_fails_raw_audio(delivered: Path, tmp_path: Path, capsys) -> None:
    assert main(["qc", str(delivered)]) == 0
    assert "5 of 5 file(s) pass" in capsys.readouterr().out  # 3 chapters, the M4B and the book MP3
    raw = tmp_path / "raw.wav"
    t = np.arange(44100 * 3) / 44100
    sf.write(raw, 0.9 * np.sin(2 * np.pi * 220 * t), 44100)
    assert main(["qc", str(raw), "--json", str(tmp_path / "qc.json")]) == 3
    assert "FAIL" in capsys.readouterr().out
    assert json.loads((tmp_path / "qc.json").read_text())[0]["passed"] is False


class StutterEngine(EspeakEngine):
    """A stochastic engine whose first take of 'storm' sentences loops (a GPT-SoVITS-style repeat)."""

    name = "stutter"
    calls: list[int] = []

    def synthesize(self, sentences, seed=0):
        clips = super().synthesize(sentences, seed)
        out = []
        for sentence, clip in zip(sentences, clips):
            if "storm" in sentence.text and seed == 0:
                StutterEngine.calls.append(seed)
                clip = Clip(np.tile(clip.audio, 4), clip.sample_rate, clip.text)  # 4× too long
            out.append(clip)
        return out


def test_clip_qc_retakes_a_bad_take(prefect_harness, tmp_path: Path) -> None:
    """A third engine is one registry entry; it declares itself stochastic, so clip QC re-takes."""
    engines.register(replace(engines.engine_info("espeak"), name="stutter", deterministic=False,
                             build=lambda voice, lexicon: StutterEngine()))
    project = tmp_path / "p"
    project.mkdir()
    (project / "book.md").write_text(
        "# One\n\n" + " ".join(f"Sentence number {w} is here." for w in ("one", "two", "three", "four", "five"))
        + " A storm came from the east.\n", encoding="utf-8")
    (project / "project.toml").write_text('[book]\nsource = "book.md"\n[voice]\nengine = "stutter"\n')
    try:
        out = tmp_path / "out"
        assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    finally:
        engines.unregister("stutter")
    assert "stutter" not in engines.known_engines()
    chapter = manifest(out)["chapters"][0]
    assert chapter["retakes"] == 1 and chapter["clip_flags"] == []
    assert StutterEngine.calls == [0]  # the bad take happened once, then a new seed fixed it


def test_a_chapter_longer_than_the_preset_allows_is_split_at_a_paragraph(prefect_harness, tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    paragraphs = "\n\n".join(f"Paragraph {w} has a first sentence. And it has a second one too."
                             for w in ("one", "two", "three", "four", "five", "six"))
    (project / "book.md").write_text(f"# Long\n\n{paragraphs}\n\n# Short\n\nJust one line.\n", encoding="utf-8")
    (project / "project.toml").write_text('[book]\nsource = "book.md"\n[mastering]\npreset = "acx"\n'
                                          '[mastering.overrides]\nmax_minutes = 0.25\ncredits = false\n')
    out = tmp_path / "out"
    assert main(["make", str(project), "--out", str(out), "--workers", "0", "--m4b"]) == 0
    m = manifest(out)
    long, short = m["chapters"]
    assert len(long["parts"]) >= 2 and short["parts"] == []
    cut_texts = [p["spans"][-1][2] for p in long["parts"][:-1]]
    assert all(t.endswith("second one too.") for t in cut_texts)  # cut after a paragraph's last sentence
    for part in long["parts"]:
        assert part["duration_s"] <= 15.0 + 0.05 and part["qc"]["passed"], part["qc"]
        assert (out / part["file"]).exists() and (out / part["file"]).with_suffix(".srt").exists()
    marks = m["book_files"]["m4b"]["chapters"]
    assert len(marks) == len(long["parts"]) + 1


def test_the_m4b_passes_qc_and_its_files_are_world_readable(delivered: Path) -> None:
    m4b = manifest(delivered)["book_files"]["m4b"]
    assert m4b["qc"]["passed"] and m4b["qc"]["peak_db"] <= m4b["qc"]["ceiling_db"]
    for path in delivered.iterdir():
        if path.is_file() and not path.name.startswith("."):
            assert path.stat().st_mode & 0o777 == 0o644, path  # a web server can publish them


def test_rerun_of_one_chapter_on_a_fresh_folder_lists_the_whole_book(prefect_harness, tmp_path: Path,
                                                                      capsys) -> None:
    out = tmp_path / "out"
    assert main(["rerun", str(EPUB_PROJECT), "--chapter", "2", "--out", str(out), "--workers", "0", "--m4b"]) == 0
    m = manifest(out)
    assert [c["status"] for c in m["chapters"]] == ["pending", "ok", "pending"]
    assert m["total"] == {**m["total"], "chapters": 3, "delivered": 1, "pending": 2, "failed": 0}
    assert "m4b" not in m["book_files"] and "not delivered" in m["book_files"]["skipped"]
    printed = capsys.readouterr().out
    assert "whole-book files not written: chapter(s) 1, 3 not delivered" in printed
    assert "pending" in printed
