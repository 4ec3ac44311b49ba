"""Quality control of delivered audio against a preset: one report per file, one verdict per rule.

The rules are the preset's numbers, checked on the decoded file (what a store's checker sees):
loudness window, RMS window, sample and true peak ceilings, noise floor, room tone present and its
length at head and tail, length per file, and for MP3s the encoding (rate, channels, CBR bitrate).
`qc_file` serves `bookcast qc`; `qc_audio` checks a buffer; reports serialise to JSON and print
as one aligned table.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ingest.errors import InputError

from .export import measure_file
from .ffmpeg import ffmpeg_blocks
from .loudness import Measures
from .meter import Meter
from .presets import Preset
from .signal import BLOCK, as_2d

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".mp3", ".m4b", ".m4a", ".wav", ".flac", ".ogg", ".opus", ".aac")
_DIGITAL_SILENCE_DB = -90.0  # 16-bit dither alone reads about −98 dBFS
_EDGE_SLACK_S = 0.03  # the edge detector works in 10 ms frames and MP3 smears edges slightly


@dataclass(frozen=True)
class RuleResult:
    """One preset rule on one file: what was measured, the allowed range, the verdict."""

    rule: str
    value: float | str | None
    limit: str
    passed: bool


@dataclass(frozen=True)
class QCReport:
    path: str
    preset: str
    measures: Measures
    head_s: float
    tail_s: float
    rules: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        """JSON-ready (non-finite numbers become None)."""
        def clean(v: object) -> object:
            return None if isinstance(v, float) and not math.isfinite(v) else v
        return {"path": self.path, "preset": self.preset, "passed": self.passed,
                "measures": self.measures.to_dict(), "head_s": round(self.head_s, 3),
                "tail_s": round(self.tail_s, 3),
                "rules": [{k: clean(v) for k, v in asdict(r).items()} for r in self.rules]}


def edge_silence(audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Seconds of room tone (or silence) before the first and after the last sound."""
    x = as_2d(audio)
    return Meter(sample_rate, x.shape[1], edges=True).feed([x]).edges()


def _r(rule: str, value: float | None, limit: str, ok: bool) -> RuleResult:
    shown = None if value is None or not math.isfinite(value) else round(value, 2)
    return RuleResult(rule, shown, limit, bool(ok))


def check_rules(m: Measures, preset: Preset, head_s: float | None = None,
                tail_s: float | None = None) -> list[RuleResult]:
    """Every level and timing rule of `preset` against measures (and head/tail room tone)."""
    out: list[RuleResult] = []
    if preset.lufs_tolerance_lu is not None:
        tol = preset.lufs_tolerance_lu
        lo, hi = preset.target_lufs - tol, preset.target_lufs + tol
        out.append(_r("loudness_lufs", m.lufs, f"{lo:g}..{hi:g}", lo <= m.lufs <= hi))
    if preset.rms_min_db is not None and preset.rms_max_db is not None:
        out.append(_r("rms_db", m.rms_db, f"{preset.rms_min_db:g}..{preset.rms_max_db:g}",
                      preset.rms_min_db <= m.rms_db <= preset.rms_max_db))
    if preset.sample_peak_ceiling_db is not None:
        out.append(_r("sample_peak_db", m.sample_peak_db, f"<= {preset.sample_peak_ceiling_db:g}",
                      m.sample_peak_db <= preset.sample_peak_ceiling_db))
    if preset.true_peak_ceiling_db is not None:
        out.append(_r("true_peak_dbtp", m.true_peak_db, f"<= {preset.true_peak_ceiling_db:g}",
                      m.true_peak_db <= preset.true_peak_ceiling_db))
    if preset.noise_floor_db is not None:
        out.append(_r("noise_floor_db", m.noise_floor_db, f"<= {preset.noise_floor_db:g}",
                      m.noise_floor_db <= preset.noise_floor_db))
    if preset.require_room_tone:
        out.append(_r("room_tone_present", m.noise_floor_db, f"> {_DIGITAL_SILENCE_DB:g}",
                      m.noise_floor_db > _DIGITAL_SILENCE_DB))
    if preset.head_tail_range_s is not None and head_s is not None and tail_s is not None:
        h0, h1, t0, t1 = preset.head_tail_range_s
        out.append(_r("head_room_tone_s", head_s, f"{h0:g}..{h1:g}",
                      h0 - _EDGE_SLACK_S <= head_s <= h1 + _EDGE_SLACK_S))
        out.append(_r("tail_room_tone_s", tail_s, f"{t0:g}..{t1:g}",
                      t0 - _EDGE_SLACK_S <= tail_s <= t1 + _EDGE_SLACK_S))
    if preset.max_minutes is not None:
        minutes = m.duration_s / 60.0
        out.append(_r("length_min", minutes, f"<= {preset.max_minutes:g}",
                      minutes <= preset.max_minutes))
    return out


def check_mp3_format(path: Path, preset: Preset) -> list[RuleResult]:
    """Encoding rules for an MP3: sample rate, channels, constant bitrate at the preset's rate; or,
    for a store preset (`mp3_min_kbps`), a minimum bitrate for the file's channel count."""
    from mutagen.mp3 import MP3, BitrateMode, HeaderNotFoundError

    try:
        info = MP3(path).info
    except HeaderNotFoundError as exc:
        raise InputError(f"not an MP3 ({exc})", path) from exc
    cbr = info.bitrate_mode in (BitrateMode.CBR, BitrateMode.UNKNOWN)
    kbps = round(info.bitrate / 1000)
    if preset.mp3_min_kbps is not None:
        low = preset.mp3_min_kbps[0 if info.channels == 1 else 1]
        return [RuleResult("sample_rate_hz", info.sample_rate, ">= 44100", info.sample_rate >= 44100),
                RuleResult("mp3_kbps", kbps, f">= {low:g} ({'mono' if info.channels == 1 else 'stereo'})",
                           kbps >= low)]
    return [
        RuleResult("sample_rate_hz", info.sample_rate, f"== {preset.sample_rate}",
                   info.sample_rate == preset.sample_rate),
        RuleResult("channels", info.channels, f"== {preset.channels}",
                   info.channels == preset.channels),
        RuleResult("mp3_cbr_kbps", kbps if cbr else f"VBR ~{kbps}",
                   f"CBR {preset.mp3_bitrate_kbps}",
                   cbr and kbps == preset.mp3_bitrate_kbps),
    ]


def check_aac_format(path: Path, preset: Preset, duration_s: float | None = None) -> list[RuleResult]:
    """A store's rules for an M4B/M4A (`aac_min_kbps`): AAC at that bitrate or more, chapter marks
    that start at 0, follow each other without gaps and end with the audio — to the millisecond
    when the decoded `duration_s` is given (ffmpeg's header shows centiseconds) — and the store's
    length per file."""
    from .ffmpeg import probe

    info = probe(path)
    duration, tolerance = (duration_s, 0.001) if duration_s is not None else (info.duration_s, 0.006)
    kbps = info.bitrate_kbps
    rules = [RuleResult("codec", info.codec, "aac", info.codec == "aac"),
             # ffmpeg's AAC encoder averages a few percent under its nominal rate on speech.
             RuleResult("aac_kbps", kbps, f">= {preset.aac_min_kbps} (nominal)",
                        kbps is not None and kbps >= 0.9 * (preset.aac_min_kbps or 0))]
    marks = info.chapters
    gaps = [b.start_s - a.end_s for a, b in zip(marks, marks[1:])]
    end_off = abs(marks[-1].end_s - duration) if marks and duration else math.inf
    exact = bool(marks) and abs(marks[0].start_s) <= 0.001 and all(abs(g) <= 0.001 for g in gaps) and end_off <= tolerance
    rules.append(RuleResult("chapters", f"{len(marks)} marks, end {end_off * 1000:.1f} ms off" if marks else "none",
                            "from 0, contiguous, ending with the audio", exact))
    if preset.book_file_max_hours is not None and duration is not None:
        hours = duration / 3600
        rules.append(_r("length_h", hours, f"<= {preset.book_file_max_hours:g}", hours <= preset.book_file_max_hours))
    return rules


def check_lossless_format(path: Path, preset: Preset) -> list[RuleResult]:
    """A store's rule for FLAC and WAV (`lossless_ok`): 16-bit samples at 44.1 kHz or more."""
    import soundfile as sf

    info = sf.info(str(path))
    return [RuleResult("lossless_format", f"{info.subtype} {info.samplerate} Hz", "PCM_16 at >= 44100 Hz",
                       info.subtype == "PCM_16" and info.samplerate >= 44100)]


def book_total_rule(reports: Iterable[QCReport], preset: Preset) -> RuleResult | None:
    """The store's rule on a whole book's length (`book_minutes`), over the files of one folder."""
    if preset.book_minutes is None:
        return None
    lo, hi = preset.book_minutes
    minutes = sum(r.measures.duration_s for r in reports) / 60.0
    return _r("book_length_min", minutes, f"{lo:g}..{hi:g}", lo <= minutes <= hi)


def qc_audio(audio: np.ndarray, sample_rate: int, preset: Preset, path: str = "") -> QCReport:
    """Check a decoded buffer against every level and timing rule of `preset`."""
    x = as_2d(audio)
    return _report(Meter(sample_rate, x.shape[1], edges=True).feed([x]), preset, path)


def _report(meter: Meter, preset: Preset, path: str) -> QCReport:
    m = meter.measures()
    head, tail = meter.edges()
    return QCReport(path, preset.name, m, head, tail, tuple(check_rules(m, preset, head, tail)))


def qc_file(path: str | Path, preset: Preset) -> QCReport:
    """Decode `path` (MP3/WAV/FLAC via libsndfile, M4B/AAC via ffmpeg) block by block and check
    it: memory stays bounded (a few MB per hour for the per-frame tables) whatever its length.

    Raises InputError when the file is missing or cannot be decoded.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", p)
    if p.suffix.lower() in (".m4b", ".m4a", ".aac", ".mp4"):
        rate, channels, stream = ffmpeg_blocks(p, BLOCK)
        meter = Meter(rate, channels, edges=True).feed(stream)
    else:
        meter = measure_file(p, edges=True)
    report = _report(meter, preset, str(p))
    suffix = p.suffix.lower()
    extra: list[RuleResult] = []
    if suffix == ".mp3":
        extra = check_mp3_format(p, preset)
    elif suffix in (".m4b", ".m4a") and preset.aac_min_kbps is not None:
        extra = check_aac_format(p, preset, report.measures.duration_s)
    elif suffix in (".flac", ".wav") and preset.lossless_ok:
        extra = check_lossless_format(p, preset)
    elif preset.mp3_min_kbps is not None or preset.aac_min_kbps is not None:  # a store preset
        accepted = "MP3" + (", FLAC, WAV" if preset.lossless_ok else "") + (", M4B/M4A (AAC)" if preset.aac_min_kbps else "")
        extra = [RuleResult("file_type", suffix.lstrip("."), accepted, False)]
    if extra:
        report = QCReport(report.path, report.preset, report.measures, report.head_s,
                          report.tail_s, report.rules + tuple(extra))
    log.info("%s: %s", p, "pass" if report.passed else
             "FAIL " + ", ".join(r.rule for r in report.failures))
    return report


def audio_files(path: str | Path) -> list[Path]:
    """The audio files at `path`: the file itself, or a folder's audio files (recursively, sorted;
    hidden folders such as bookcast's `.work` clip cache are skipped).

    Raises InputError when nothing is there.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*")
                       if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        if files:
            return files
        raise InputError("no audio files in this folder", p)
    raise InputError("no such file or folder", p)


def table_rows(reports: Iterable[QCReport]) -> list[dict[str, object]]:
    """One flat row per file (for a Prefect table artifact or a CSV): measures, verdict, and the
    failed rules by name."""
    rows = []
    for r in reports:
        row: dict[str, object] = {"file": Path(r.path).name or r.path}
        row.update(r.measures.to_dict())
        row["verdict"] = "pass" if r.passed else "FAIL"
        row["failed"] = ", ".join(x.rule for x in r.failures)
        rows.append(row)
    return rows


def format_table(reports: Iterable[QCReport]) -> str:
    """A plain-text table: one row per file with the key measures and the failed rules."""
    rows = [("file", "min", "LUFS", "RMS", "peak", "dBTP", "floor", "verdict")]
    for r in reports:
        m = r.measures

        def f(v: float) -> str:
            return f"{v:.1f}" if math.isfinite(v) else "-" if math.isnan(v) else "-inf"
        verdict = "pass" if r.passed else "FAIL: " + ", ".join(x.rule for x in r.failures)
        rows.append((Path(r.path).name or "-", f"{m.duration_s / 60:.1f}", f(m.lufs), f(m.rms_db),
                     f(m.sample_peak_db), f(m.true_peak_db), f(m.noise_floor_db), verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1]
                     for row in rows)
