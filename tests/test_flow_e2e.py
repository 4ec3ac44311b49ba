"""End to end through Prefect: the sample project into decodable, tagged, mastered MP3 chapters."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from mutagen.id3 import ID3

from flows.cli import main
from mastering.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "projects" / "bilingual-sample"
EPUB_PROJECT = ROOT / "projects" / "sample-epub"


def decode(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return audio[:, 0], rate


def check_chapter_file(path: Path, preset_name: str = "acx") -> dict:
    preset = get_preset(preset_name)
    audio, rate = decode(path)
    assert rate == preset.sample_rate
    rms = 20 * np.log10(np.sqrt(np.mean(audio**2)))
    peak = 20 * np.log10(np.abs(audio).max())
    lufs = pyloudnorm.Meter(rate).integrated_loudness(audio)
    assert rms > -40, f"{path.name} is (nearly) silent"
    if preset.rms_min_db is not None:
        assert preset.rms_min_db - 0.5 <= rms <= preset.rms_max_db + 0.5, (path.name, rms)
    if preset.lufs_tolerance_lu is not None:
        assert abs(lufs - preset.target_lufs) <= preset.lufs_tolerance_lu, (path.name, lufs)
    assert peak <= (preset.peak_ceiling_db or 0) + 0.1, (path.name, peak)
    return {"rms": rms, "lufs": lufs, "peak": peak, "seconds": len(audio) / rate}


def test_cli_make_sample_project(prefect_harness, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["make", str(SAMPLE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "manifest.json" in printed
    files = sorted(out.glob("*.mp3"))
    assert [f.name[:3] for f in files] == ["01-", "02-", "03-"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [c["file"] for c in manifest["chapters"]] == [f.name for f in files]
    assert manifest["total"]["failed"] == 0
    for i, f in enumerate(files, start=1):
        measured = check_chapter_file(f)
        tags = ID3(f)
        chapter = manifest["chapters"][i - 1]
        assert tags["TIT2"].text[0] == chapter["title"]
        assert tags["TALB"].text[0] == "双语小书 A Bilingual Little Book"
        assert tags["TPE1"].text[0] == "bookcast"
        assert tags["TRCK"].text[0] == f"{i}/3"
        assert abs(measured["seconds"] - chapter["duration_s"]) < 0.2
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_epub_project_with_cover_to_the_podcast_loudness(prefect_harness, tmp_path: Path) -> None:
    out = tmp_path / "epub"
    assert main(["make", str(EPUB_PROJECT), "--out", str(out), "--preset", "podcast"]) == 0
    files = sorted(out.glob("*.mp3"))
    assert len(files) == 3
    apic = ID3(files[0]).getall("APIC")
    from ingest.epub import read_epub

    cover = read_epub(EPUB_PROJECT / "lighthouse.epub").meta.cover
    assert apic and cover and apic[0].data == cover
    for f in files:
        check_chapter_file(f, "podcast")


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    from epub_factory import EpubSpec, build_epub, xhtml

    renamed = tmp / "notes.epub"
    renamed.write_text("plain text, renamed")
    empty = build_epub(tmp / "empty.epub", EpubSpec(docs=[("a.xhtml", xhtml("<p> </p>"))], toc=[("a.xhtml", "A")]))
    return {"missing": tmp / "nope.epub", "renamed": renamed, "no_text": empty}


@pytest.mark.parametrize("case", ["missing", "renamed", "no_text"])
def test_bad_input_one_line_nonzero_no_output(prefect_harness, tmp_path: Path, capsys, case: str) -> None:
    source = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    assert main(["make", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bookcast: error: ") and str(source) in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_readme_command_in_a_fresh_process(tmp_path: Path) -> None:
    """The README's main command, as a user runs it: a new process, a fresh Prefect home."""
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)
    exe = shutil.which("bookcast")
    assert exe, "the bookcast console script is not installed (pip install -e .)"
    run = subprocess.run([exe, "make", str(SAMPLE)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = next((tmp_path / "bookcast-out").iterdir())
    assert len(list(out.glob("*.mp3"))) == 3
