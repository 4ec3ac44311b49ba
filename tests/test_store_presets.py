"""Store presets: `apple-books` and `google-play` deliver files their checkers accept, and
`bookcast qc --preset` fails files that break one of their rules, naming the rule.

The failing files are made here on purpose, one rule broken each, everything else inside the rules
(levels, room tone), so the verdict can only come from the rule under test.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from flows.cli import main
from mastering.chapters_json import check_chapters
from mastering.ffmpeg import ffmpeg_exe, probe
from mastering.presets import get_preset
from mastering.qc import qc_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "projects" / "bilingual-sample"
RATE = 44100


def narration(seconds: float = 20.0, head: float = 0.75, tail: float = 2.5, channels: int = 1) -> np.ndarray:
    """Speech-like bursts at about −20 dB RMS with room tone at −72 dB around and between them."""
    rng = np.random.default_rng(7)
    n = int((head + seconds + tail) * RATE)
    x = rng.normal(0, 10 ** (-72 / 20), n)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = (np.sin(2 * np.pi * 0.7 * t) > -0.2).astype(float)
    import scipy.signal as ss

    voice = ss.sosfilt(ss.butter(4, 3500, fs=RATE, output="sos"), rng.normal(0, 1, len(t))) * envelope  # speech band
    voice *= 10 ** (-19 / 20) / np.sqrt(np.mean(voice ** 2))
    x[int(head * RATE):int(head * RATE) + len(t)] += np.clip(voice, -0.6, 0.6)
    x = x.astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels == 2 else x


def encode(audio: np.ndarray, path: Path, *args: str) -> Path:
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(RATE),
                    "-ac", str(channels), "-i", "-", *args, str(path)], input=audio.astype("<f4").tobytes(),
                   check=True)
    return path


def failed(path: Path, preset: str) -> set[str]:
    return {r.rule for r in qc_file(path, get_preset(preset)).failures}


def test_each_store_rule_fails_by_name(tmp_path: Path) -> None:
    from mastering.m4b import write_m4b
    from mastering.tags import Tags

    good_mp3 = encode(narration(), tmp_path / "good.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    assert failed(good_mp3, "google-play") == set()
    assert failed(encode(narration(), tmp_path / "low.mp3", "-c:a", "libmp3lame", "-b:a", "96k"),
                  "google-play") == {"mp3_kbps"}
    assert failed(encode(narration(channels=2), tmp_path / "stereo.mp3", "-c:a", "libmp3lame", "-b:a", "192k"),
                  "google-play") == {"mp3_kbps"}  # stereo needs 256
    assert failed(encode(narration(head=0.0), tmp_path / "abrupt.mp3", "-c:a", "libmp3lame", "-b:a", "128k"),
                  "google-play") == {"head_room_tone_s"}  # no silence at the start
    sf.write(tmp_path / "good.flac", narration(), RATE, subtype="PCM_16")
    assert failed(tmp_path / "good.flac", "google-play") == set()
    sf.write(tmp_path / "deep.flac", narration(), RATE, subtype="PCM_24")
    assert failed(tmp_path / "deep.flac", "google-play") == {"lossless_format"}

    apple = get_preset("apple-books")
    tags = Tags(title="A Book", album="A Book", artist="Someone")
    for kbps, name in ((256, "good.m4b"), (64, "thin.m4b")):
        preset = apple if kbps == 256 else get_preset("apple-books", {"aac_bitrate_kbps": kbps})
        write_m4b(tmp_path / name, [narration(channels=2), narration(channels=2)], ["One", "Two"], tags, preset,
                  source_rate=RATE, work=tmp_path)
    assert failed(tmp_path / "good.m4b", "apple-books") == set()
    assert failed(tmp_path / "thin.m4b", "apple-books") == {"aac_kbps"}
    over = get_preset("apple-books", {"book_file_max_hours": 0.005})  # 18 s: as a 23-hour limit would a long book
    assert {r.rule for r in qc_file(tmp_path / "good.m4b", over).failures} == {"length_h"}
    bare = encode(narration(channels=2), tmp_path / "bare.m4a", "-c:a", "aac", "-b:a", "256k")
    assert failed(bare, "apple-books") == {"chapters"}
    assert failed(good_mp3, "apple-books") == set()  # MP3 chapters are judged by the MP3 rules


def test_qc_command_names_the_failed_rule_and_the_book_length(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "book"
    folder.mkdir()
    encode(narration(), folder / "01.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    assert main(["qc", str(folder), "--preset", "google-play"]) == 3  # 24 s: under the 5-minute minimum
    out = capsys.readouterr().out
    assert "book: book_length_min 0.39 (allowed 5..6000): FAIL" in out
    encode(narration(), folder / "02.mp3", "-c:a", "libmp3lame", "-b:a", "96k")
    assert main(["qc", str(folder / "02.mp3"), "--preset", "google-play"]) == 3
    out = capsys.readouterr().out
    assert "FAIL: mp3_kbps" in out
    assert "02.mp3: mp3_kbps 96 (allowed >= 128 (mono))" in out  # by how much, not only which rule


@pytest.mark.parametrize("preset", ["apple-books", "google-play"])
def test_make_delivers_what_the_store_accepts(prefect_harness, tmp_path: Path, preset: str, capsys) -> None:
    book = tmp_path / "book.md"
    # google-play's book must last 5 minutes; apple-books needs only its chapters.
    words = ("The keeper climbed the stairs of the lighthouse every evening and lit the lamp. "
             * (14 if preset == "google-play" else 3)).strip()
    book.write_text("---\ntitle: Store Test\nauthor: bookcast\nlanguage: en\n---\n\n" + "".join(
        f"# Part {k}\n\n{words}\n\n{words}\n\n" for k in (1, 2, 3)), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["make", str(book), "--out", str(out), "--preset", preset]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert all(c["qc"]["passed"] for c in manifest["chapters"])
    capsys.readouterr()
    assert main(["qc", str(out), "--preset", preset]) == 0, capsys.readouterr().out
    printed = capsys.readouterr().out
    if preset == "apple-books":
        m4b = out / "store-test.m4b"
        entry = manifest["book_files"]["m4b"]
        assert entry["qc"]["passed"] and {r["rule"] for r in entry["qc"]["rules"]} >= {"codec", "aac_kbps", "chapters"}
        info = probe(m4b)
        assert info.codec == "aac" and info.channels == 2 and len(info.chapters) == 3
        doc = json.loads((out / "store-test.m4b.chapters.json").read_text(encoding="utf-8"))
        check_chapters(doc, info.duration_s)
        assert [c["title"] for c in doc["chapters"]] == ["Part 1", "Part 2", "Part 3"]
        assert abs(doc["chapters"][-1]["endTime"] - info.duration_s) < 0.05
    else:
        assert "book: book_length_min" in printed and ": pass" in printed


def test_apple_books_cuts_tracks_between_chapters_at_23_hours() -> None:
    from flows.steps.book_files import length_groups
    from flows.steps.manifest import ChapterRecord

    hours = [9, 9, 4, 1, 12, 0.5]
    chapters = [ChapterRecord(index=i, title=str(i), duration_s=h * 3600) for i, h in enumerate(hours, 1)]
    groups = length_groups(chapters, get_preset("apple-books").book_file_max_hours)
    assert [[c.index for c in g] for g in groups] == [[1, 2, 3, 4], [5, 6]]
    assert length_groups(chapters, None) == [chapters]


def test_audiobookshelf_layout(prefect_harness, tmp_path: Path) -> None:
    import shutil
    import xml.etree.ElementTree as ET

    project = tmp_path / "sample-epub"
    shutil.copytree(ROOT / "projects" / "sample-epub", project)
    library = tmp_path / "library"
    assert main(["make", str(project), "--out", str(library), "--layout", "audiobookshelf"]) == 0
    folder = library / "Mei Lin" / "The Lighthouse Keeper"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    files = sorted(p.name for p in folder.glob("*.mp3"))
    assert files == [c["file"] for c in manifest["chapters"]] and files[0].startswith("01-")
    assert (folder / "cover.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert meta["title"] == "The Lighthouse Keeper" and meta["authors"] == ["Mei Lin"]
    starts = [c["start"] for c in meta["chapters"]]
    assert starts[0] == 0 and starts == sorted(starts) and len(starts) == len(files)
    total = sum(c["duration_s"] for c in manifest["chapters"])
    assert abs(meta["chapters"][-1]["end"] - total) < 0.01
    opf = ET.parse(folder / "metadata.opf").getroot()
    dc = "{http://purl.org/dc/elements/1.1/}"
    assert opf.find(f".//{dc}title").text == "The Lighthouse Keeper"
    assert opf.find(f".//{dc}creator").text == "Mei Lin"
    assert [p.name for p in library.iterdir()] == ["Mei Lin"]  # nothing else in the library
