"""Mastering benchmark: bookcast vs ffmpeg-normalize on the same 10-minute speech-like WAV.

    python bench/bench_mastering.py [--minutes 10] [--preset podcast] [--repeat 1]

Both sides start from the same 16-bit WAV on disk and end with a finished MP3 at the preset's
bitrate, in one run, one after the other:

- bookcast: read the WAV, `deliver_mp3` — measure (BS.1770 loudness, true peak), decide the gain,
  look-ahead limit, predict the encoder's level loss, encode with LAME, decode the MP3 and
  re-measure it (re-encoding if it drifted), tag, write atomically. Also timed: the bare
  `master` + `encode_mp3` path without the decode check.
- ffmpeg-normalize: its two-pass EBU R128 mode (pass 1 measures with loudnorm, pass 2 applies
  loudnorm with the measured values) with libmp3lame in the second pass, using the ffmpeg binary
  bundled with imageio-ffmpeg (FFMPEG_PATH). LAME quality is left at its default (q 3), the
  same quality bookcast's presets use.

Then both MP3s are decoded and checked against the preset with `mastering.qc` (true peak measured
on the decoded file). Needs `pip install ffmpeg-normalize`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mastering.export import deliver_mp3, encode_mp3  # noqa: E402
from mastering.ffmpeg import ffmpeg_exe  # noqa: E402
from mastering.master import master  # noqa: E402
from mastering.presets import get_preset  # noqa: E402
from mastering.qc import QCReport, qc_file  # noqa: E402
from mastering.roomtone import room_tone  # noqa: E402
from mastering.synthetic import speech_like  # noqa: E402
from mastering.tags import Tags  # noqa: E402


def make_wav(path: Path, minutes: float, sample_rate: int = 44100) -> None:
    """A stitched chapter: speech-like audio at a typical raw TTS level (about −26 LUFS) over
    −75 dBFS room tone, with 0.75 s of room tone before the first word and 2.5 s after the last."""
    speech = speech_like(minutes * 60.0 - 3.05, sample_rate, seed=1) * 0.5  # starts after 0.2 s
    x = np.concatenate([np.zeros(int(0.55 * sample_rate), np.float32), speech,
                        np.zeros(int(2.5 * sample_rate), np.float32)])
    x += room_tone(0, len(x), sample_rate, -75.0, seed=2)
    sf.write(path, x, sample_rate, subtype="PCM_16")


def run_bookcast(wav: Path, out: Path, preset_name: str) -> float:
    p = get_preset(preset_name)
    t0 = time.perf_counter()
    audio, sr = sf.read(wav, dtype="float32")
    deliver_mp3(out, audio, sr, p, Tags(title="bench"))
    return time.perf_counter() - t0


def run_bookcast_bare(wav: Path, out: Path, preset_name: str) -> float:
    p = get_preset(preset_name)
    t0 = time.perf_counter()
    audio, sr = sf.read(wav, dtype="float32")
    y, _ = master(audio, sr, p)
    out.write_bytes(encode_mp3(y, p.sample_rate, p))
    return time.perf_counter() - t0


def run_ffmpeg_normalize(wav: Path, out: Path, preset_name: str) -> float:
    p = get_preset(preset_name)
    ceiling = p.peak_ceiling_db if p.peak_ceiling_db is not None else -1.0
    cmd = [sys.executable, "-m", "ffmpeg_normalize", str(wav), "-nt", "ebu",
           "-t", str(p.target_lufs), "-tp", str(ceiling),
           "-c:a", "libmp3lame", "-b:a", f"{p.mp3_bitrate_kbps}k", "-ar", str(p.sample_rate),
           "-o", str(out), "-f", "-q"]
    env = dict(os.environ, FFMPEG_PATH=ffmpeg_exe())
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ffmpeg-normalize failed: {proc.stderr.strip()[-500:]}")
    return elapsed


def describe(name: str, seconds: float, report: QCReport) -> str:
    m = report.measures
    rules = ", ".join(f"{r.rule}={r.value} ({r.limit}) {'ok' if r.passed else 'FAIL'}"
                      for r in report.rules)
    return (f"{name:<28} {seconds:7.2f} s  LUFS {m.lufs:6.2f}  RMS {m.rms_db:6.2f}  "
            f"peak {m.sample_peak_db:6.2f}  TP {m.true_peak_db:6.2f}  "
            f"{'PASS' if report.passed else 'FAIL'}\n{'':<30}{rules}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--preset", default="podcast")
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs per side")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mastering-") as tmp:
        d = Path(tmp)
        wav = d / "speech.wav"
        make_wav(wav, args.minutes)
        print(f"input: {args.minutes:g} min speech-like WAV, 44.1 kHz mono 16-bit; "
              f"preset {args.preset}; {os.cpu_count()} CPUs; best of {args.repeat}")
        ours = min(run_bookcast(wav, d / "bookcast.mp3", args.preset) for _ in range(args.repeat))
        bare = min(run_bookcast_bare(wav, d / "bare.mp3", args.preset)
                   for _ in range(args.repeat))
        theirs = min(run_ffmpeg_normalize(wav, d / "ffnorm.mp3", args.preset)
                     for _ in range(args.repeat))
        p = get_preset(args.preset)
        print(describe("bookcast deliver_mp3", ours, qc_file(d / "bookcast.mp3", p)))
        print(describe("bookcast master+encode", bare, qc_file(d / "bare.mp3", p)))
        print(describe("ffmpeg-normalize (2-pass)", theirs, qc_file(d / "ffnorm.mp3", p)))
        print(f"speed-up: deliver_mp3 {theirs / ours:.1f}x, master+encode {theirs / bare:.1f}x "
              f"(target >= 3x)")


if __name__ == "__main__":
    main()
